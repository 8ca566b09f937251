//! The database schema as numbered migrations, one source for both dialects.
//!
//! Each migration is a list of statements; a statement written once serves
//! both backends, with `{serial}` standing for the dialect's auto-increment key
//! (SQLite `INTEGER PRIMARY KEY AUTOINCREMENT`, PostgreSQL `BIGSERIAL PRIMARY
//! KEY`). sqlx's migrator applies them (`_sqlx_migrations` records each version
//! with its checksum; on PostgreSQL it holds an advisory lock while it runs, so
//! nodes starting together on an empty schema migrate once). A migration that
//! has been released never changes: its checksum is checked at every start.
//!
//! Version 1 is the schema of the releases before versions were recorded.
//! Every statement of it is `IF NOT EXISTS`, so a database those releases
//! created takes it as a no-op and then the later versions (the upgrade path
//! `engine/tests/upgrade.rs` runs on committed fixture databases).

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// A statement for both dialects, or for one of them.
#[derive(Clone, Copy)]
enum Stmt {
    Both(&'static str),
    Sqlite(&'static str),
    Postgres(&'static str),
}

struct Version {
    version: i64,
    name: &'static str,
    statements: &'static [Stmt],
}

use Stmt::{Both, Postgres, Sqlite};

const VERSIONS: &[Version] = &[
    Version {
        version: 1,
        name: "baseline: the schema before versions were recorded",
        statements: BASELINE,
    },
    Version {
        version: 2,
        name: "timer claims that fail back off instead of dropping the timer",
        statements: &[
            // How many claims of this case's due timers failed in a row (its
            // flow not loadable on the claiming node, say): the next claim
            // waits 2^attempts seconds, up to ten minutes. A command that
            // writes the case sets it back to 0.
            Both("ALTER TABLE case_timers ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0"),
            Sqlite("DROP TRIGGER IF EXISTS inbox_apply"),
            Sqlite(INBOX_TRIGGER),
        ],
    },
    Version {
        version: 3,
        name: "blobs: attachments and generated documents",
        statements: &[
            // SQLite keeps blobs as files beside the database; PostgreSQL,
            // shared by several nodes, keeps them here.
            Postgres(
                "CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, bytes BYTEA NOT NULL)",
            ),
        ],
    },
    Version {
        version: 4,
        name: "the cards still owed a supervision order, found without reading every card",
        statements: &[
            // Partial: only issued cards without an order, normally none.
            Both(
                "CREATE INDEX IF NOT EXISTS alarms_owed_orders ON alarms (rule, level) WHERE state = 'issued' AND order_case IS NULL",
            ),
        ],
    },
    Version {
        version: 5,
        name: "tokens expire and can be revoked; users can be disabled",
        statements: &[
            Both("ALTER TABLE api_tokens ADD COLUMN expires_at TEXT"),
            Both("ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT"),
            Both("ALTER TABLE users ADD COLUMN disabled_at TEXT"),
            // Tokens made before expiry existed expire 90 days after they were made.
            Sqlite(
                "UPDATE api_tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%S', created_at, '+90 days')",
            ),
            Postgres(
                "UPDATE api_tokens SET expires_at = to_char(CAST(created_at AS TIMESTAMP) + INTERVAL '90 days', 'YYYY-MM-DD\"T\"HH24:MI:SS')",
            ),
        ],
    },
    Version {
        version: 6,
        name: "the cross-case figures the rules read, shared by every node",
        statements: &[Both(
            "CREATE TABLE IF NOT EXISTS supervision_figures (
        id BIGINT PRIMARY KEY,
        version BIGINT NOT NULL,
        figures TEXT NOT NULL,
        computed_at TEXT NOT NULL
    )",
        )],
    },
    Version {
        version: 7,
        name: "the event log and the audit log as hash chains (tamper evidence)",
        statements: &[
            // Set by the sealer (`store/chain.rs`): the row's place in its
            // table's chain and its hash; NULL until sealed.
            Both("ALTER TABLE event_log ADD COLUMN chain_seq BIGINT"),
            Both("ALTER TABLE event_log ADD COLUMN hash TEXT"),
            Both("ALTER TABLE audit_log ADD COLUMN chain_seq BIGINT"),
            Both("ALTER TABLE audit_log ADD COLUMN hash TEXT"),
            Both("CREATE UNIQUE INDEX IF NOT EXISTS event_log_chain ON event_log (chain_seq)"),
            Both("CREATE UNIQUE INDEX IF NOT EXISTS audit_log_chain ON audit_log (chain_seq)"),
            // Partial: only rows waiting for the sealer, normally a few.
            Both(
                "CREATE INDEX IF NOT EXISTS event_log_unsealed ON event_log (at, case_no, seq) WHERE hash IS NULL",
            ),
            Both(
                "CREATE INDEX IF NOT EXISTS audit_log_unsealed ON audit_log (id) WHERE hash IS NULL",
            ),
        ],
    },
];

/// The versions applied to a database, in order.
pub(crate) const APPLIED: &str =
    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

/// The newest schema version this build knows.
pub fn latest() -> i64 {
    VERSIONS.last().map_or(0, |v| v.version)
}

/// The migrator for one dialect.
pub(crate) fn migrator(sqlite: bool) -> Migrator {
    let serial = if sqlite {
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    } else {
        "BIGSERIAL PRIMARY KEY"
    };
    let migrations = VERSIONS
        .iter()
        .map(|v| {
            let sql: Vec<String> = v
                .statements
                .iter()
                .filter_map(|s| match *s {
                    Both(t) => Some(t.replace("{serial}", serial)),
                    Sqlite(t) if sqlite => Some(t.to_string()),
                    Sqlite(_) => None,
                    Postgres(t) if !sqlite => Some(t.to_string()),
                    Postgres(_) => None,
                })
                .collect();
            Migration::new(
                v.version,
                v.name.into(),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(sql.join(";\n")).into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

/// Brings the database up to `latest()`. A database a newer govflow migrated
/// is refused rather than written with an older idea of its tables.
pub(crate) async fn migrate<'a, A>(conn: A, sqlite: bool) -> Result<(), super::StoreError>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    use sqlx::migrate::MigrateError;
    migrator(sqlite).run(conn).await.map_err(|e| match e {
        MigrateError::VersionMissing(found) => super::StoreError::SchemaTooNew {
            found,
            known: latest(),
        },
        other => super::StoreError::Migrate(other.to_string()),
    })
}

const BASELINE: &[Stmt] = &[
    Both(
        "CREATE TABLE IF NOT EXISTS deployments (
        id {serial},
        flow_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        hash TEXT NOT NULL,
        file TEXT NOT NULL,
        source TEXT NOT NULL,
        deployed_at TEXT NOT NULL,
        deployed_by TEXT NOT NULL,
        UNIQUE (flow_id, hash),
        UNIQUE (flow_id, version)
    )",
    ),
    // Supervision cards (预警/黄牌/红牌) with their life: pending → issued →
    // ordered → closed, or cancelled / revoked (crate::store::cards).
    Both(
        "CREATE TABLE IF NOT EXISTS alarms (
        id {serial},
        rule TEXT NOT NULL,
        name TEXT NOT NULL,
        class TEXT NOT NULL,
        subtype TEXT NOT NULL,
        case_no TEXT NOT NULL,
        subject TEXT NOT NULL,
        department TEXT NOT NULL,
        level TEXT NOT NULL,
        state TEXT NOT NULL,
        appeal TEXT,
        order_case TEXT,
        issued_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        history TEXT NOT NULL
    )",
    ),
    // Who is told of a card (a rule's `notify`, and the card's department): an
    // outbox for whatever delivers messages (delivery itself is out of scope).
    Both(
        "CREATE TABLE IF NOT EXISTS notifications (
        id {serial},
        at TEXT NOT NULL,
        recipient TEXT NOT NULL,
        case_no TEXT NOT NULL,
        rule TEXT NOT NULL,
        level TEXT NOT NULL,
        change TEXT NOT NULL,
        message TEXT NOT NULL
    )",
    ),
    Both("CREATE INDEX IF NOT EXISTS notifications_recipient ON notifications (recipient, id)"),
    Both(
        "CREATE TABLE IF NOT EXISTS efficiency_adjustments (
        id {serial},
        department TEXT NOT NULL,
        period TEXT NOT NULL,
        delta DOUBLE PRECISION NOT NULL,
        reason TEXT NOT NULL,
        by_whom TEXT NOT NULL,
        state TEXT NOT NULL,
        at TEXT NOT NULL,
        history TEXT NOT NULL
    )",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS audit_log (
        id {serial},
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    )",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS cases (
        case_no TEXT PRIMARY KEY,
        flow_id TEXT NOT NULL,
        flow_version BIGINT NOT NULL,
        status TEXT NOT NULL,
        version BIGINT NOT NULL,
        snapshot TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )",
    ),
    Both("CREATE INDEX IF NOT EXISTS cases_status ON cases (status, flow_id)"),
    // The event log: one row per command, `body` the JSON array of its events
    // (sequence numbers seq..=last_seq).
    Both(
        "CREATE TABLE IF NOT EXISTS event_log (
        case_no TEXT NOT NULL,
        seq BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        at TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (case_no, seq)
    )",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS tasks (
        case_no TEXT NOT NULL,
        task_id BIGINT NOT NULL,
        step TEXT NOT NULL,
        name TEXT NOT NULL,
        department TEXT NOT NULL,
        role TEXT,
        opened_at TEXT NOT NULL,
        due TEXT,
        flow_id TEXT NOT NULL,
        PRIMARY KEY (case_no, task_id)
    )",
    ),
    Both("CREATE INDEX IF NOT EXISTS tasks_department ON tasks (department, opened_at)"),
    // One row per case with timers: the instant its next timer falls due. The
    // timers themselves (which deadline, wait, …) live in the case snapshot.
    Both(
        "CREATE TABLE IF NOT EXISTS case_timers (
        case_no TEXT PRIMARY KEY,
        due TEXT NOT NULL
    )",
    ),
    Both("CREATE INDEX IF NOT EXISTS case_timers_due ON case_timers (due)"),
    // Idempotency keys: a key answers only the same request (its fingerprint).
    Both(
        "CREATE TABLE IF NOT EXISTS command_keys (
        idem_key TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        case_no TEXT NOT NULL,
        version BIGINT NOT NULL,
        first_seq BIGINT NOT NULL,
        at TEXT NOT NULL
    )",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS packs (
        id TEXT PRIMARY KEY,
        manifest TEXT NOT NULL,
        deployed_at TEXT NOT NULL
    )",
    ),
    Both("CREATE INDEX IF NOT EXISTS alarms_case ON alarms (case_no, state)"),
    // No index that leads with `state`: SQLite would pick it for a case's
    // cards (`state IN (…)`) over `alarms_case` and read every open card.
    Both("DROP INDEX IF EXISTS alarms_state"),
    Both("CREATE INDEX IF NOT EXISTS alarms_department ON alarms (department, state)"),
    // 服务评价: one rating per case and account.
    Both(
        "CREATE TABLE IF NOT EXISTS ratings (
        case_no TEXT NOT NULL,
        account TEXT NOT NULL,
        score BIGINT NOT NULL,
        reason TEXT,
        department TEXT NOT NULL,
        flow_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (case_no, account)
    )",
    ),
    // People and systems (API tokens). Roles: [{role, department?, position?}].
    Both(
        "CREATE TABLE IF NOT EXISTS users (
        login TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        roles TEXT NOT NULL,
        password_hash TEXT,
        created_at TEXT NOT NULL
    )",
    ),
    // Login sessions: the cookie's SHA-256, the CSRF token writes must echo.
    Both(
        "CREATE TABLE IF NOT EXISTS sessions (
        hash TEXT PRIMARY KEY,
        login TEXT NOT NULL,
        csrf TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )",
    ),
    // API tokens: only their SHA-256 is stored.
    Both(
        "CREATE TABLE IF NOT EXISTS api_tokens (
        hash TEXT PRIMARY KEY,
        login TEXT NOT NULL,
        label TEXT NOT NULL,
        created_at TEXT NOT NULL
    )",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS case_numbers (
        prefix TEXT PRIMARY KEY,
        next BIGINT NOT NULL
    )",
    ),
    // Who took an open task (认领): one person per task until they release it.
    Both(
        "CREATE TABLE IF NOT EXISTS task_claims (
        case_no TEXT NOT NULL,
        task_id BIGINT NOT NULL,
        login TEXT NOT NULL,
        name TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (case_no, task_id)
    )",
    ),
    // SQLite's write path: the group-commit writer inserts one `inbox` row per
    // changed case and a trigger (`INBOX_TRIGGER`) fans it out, so a whole
    // batch is one statement. A view, not a table: no inbox row is stored.
    Sqlite(
        "CREATE VIEW IF NOT EXISTS inbox AS SELECT
        '' AS case_no, 0 AS old_version, 0 AS is_new, '' AS flow_id, 0 AS flow_version,
        '' AS status, 0 AS version, '' AS snapshot, '' AS stamp, '[]' AS events, '[]' AS tasks_del, '[]' AS tasks,
        NULL AS next_due, '[]' AS commands, '[]' AS audit, '[]' AS numbers
        WHERE 0",
    ),
];

/// The `inbox` trigger as of the newest version that changed it (2: a written
/// case's timer row starts its retries afresh). The version check aborts the
/// whole batch.
const INBOX_TRIGGER: &str = "CREATE TRIGGER inbox_apply INSTEAD OF INSERT ON inbox BEGIN
        SELECT RAISE(ABORT, 'govflow: version conflict')
          WHERE NEW.is_new = 0 AND NOT EXISTS
            (SELECT 1 FROM cases WHERE case_no = NEW.case_no AND version = NEW.old_version);
        INSERT INTO cases (case_no, flow_id, flow_version, status, version, snapshot, created_at, updated_at)
          SELECT NEW.case_no, NEW.flow_id, NEW.flow_version, NEW.status, NEW.version, NEW.snapshot, NEW.stamp, NEW.stamp
          WHERE NEW.is_new = 1;
        UPDATE cases SET status = NEW.status, version = NEW.version, snapshot = NEW.snapshot, updated_at = NEW.stamp
          WHERE NEW.is_new = 0 AND case_no = NEW.case_no;
        INSERT INTO event_log (case_no, seq, last_seq, at, body)
          SELECT NEW.case_no, value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(NEW.events);
        DELETE FROM tasks WHERE case_no = NEW.case_no
          AND task_id IN (SELECT value FROM json_each(NEW.tasks_del));
        INSERT INTO tasks (case_no, task_id, step, name, department, role, opened_at, due, flow_id)
          SELECT NEW.case_no, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, NEW.flow_id
          FROM json_each(NEW.tasks);
        DELETE FROM case_timers WHERE case_no = NEW.case_no AND NEW.next_due IS NULL;
        INSERT INTO case_timers (case_no, due, attempts) SELECT NEW.case_no, NEW.next_due, 0
          WHERE NEW.next_due IS NOT NULL
          ON CONFLICT (case_no) DO UPDATE SET due = excluded.due, attempts = 0;
        INSERT INTO command_keys (idem_key, fingerprint, case_no, version, first_seq, at)
          SELECT value ->> 0, value ->> 4, NEW.case_no, value ->> 1, value ->> 2, value ->> 3 FROM json_each(NEW.commands);
        INSERT INTO audit_log (at, actor, action, detail)
          SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(NEW.audit);
        INSERT INTO case_numbers (prefix, next)
          SELECT value ->> 0, value ->> 1 FROM json_each(NEW.numbers) WHERE true
          ON CONFLICT (prefix) DO UPDATE SET next = excluded.next;
    END";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_from_one_without_gaps() {
        for (i, v) in VERSIONS.iter().enumerate() {
            assert_eq!(v.version, i as i64 + 1, "{}", v.name);
        }
    }

    #[test]
    fn each_dialect_gets_its_key_and_only_its_statements() {
        let sqlite = migrator(true);
        let pg = migrator(false);
        let first = |m: &Migrator| m.iter().next().map(|m| m.sql.as_str().to_string());
        let (s, p) = (
            first(&sqlite).unwrap_or_default(),
            first(&pg).unwrap_or_default(),
        );
        assert!(s.contains("AUTOINCREMENT") && !s.contains("{serial}"));
        assert!(p.contains("BIGSERIAL") && !p.contains("inbox"));
        assert!(s.contains("CREATE VIEW IF NOT EXISTS inbox"));
    }
}
