//! Tamper evidence (the guideline's 防篡改): the event log and the audit log
//! are each one hash chain. Every row, once sealed, carries its place in the
//! chain (`chain_seq`, 1, 2, 3 …) and `hash` = H(the previous row's hash, the
//! row's own fields). Changing, removing or reordering a sealed row breaks the
//! chain at that row, and `verify` names it.
//!
//! Rows are written unsealed, by whatever writes them (the command pipeline,
//! SQLite's `inbox` trigger, deployments, the card board, user changes), and
//! a sealer — one at a time across every node, under `Dialect::LOCK_SEAL` —
//! chains them in batches a moment later. So no command waits for a global
//! lock, and a database written before the chains existed is sealed on its
//! first start. The chain's order is the order of sealing; a row is unsealed
//! for about a second (the sealer's round), which `verify` reports.
//!
//! Without a key, someone who can rewrite the whole database can rewrite the
//! whole chain: `verify` prints each chain's head (its last place and hash) so
//! an operator can record it elsewhere and compare later (docs/security.md).
//!
//! The hash is SHA-256, or SM3 (GB/T 32905) where a deployment's security review
//! asks for the national algorithm; each hash names its algorithm (`sha256:…`,
//! `sm3:…`), so a deployment may switch and older rows still verify.

use super::StoreError;
use super::sql::{Conn, Dialect, SqlRow, q};
use serde::Serialize;

/// The hash a deployment seals with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainHash {
    #[default]
    Sha256,
    Sm3,
}

impl ChainHash {
    pub fn name(self) -> &'static str {
        match self {
            ChainHash::Sha256 => "sha256",
            ChainHash::Sm3 => "sm3",
        }
    }

    pub fn parse(s: &str) -> Option<ChainHash> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sha256" | "sha-256" => Some(ChainHash::Sha256),
            "sm3" => Some(ChainHash::Sm3),
            _ => None,
        }
    }

    /// The hash of a row: its predecessor's hash, then each field with its
    /// length in front (so no two rows' fields run together the same way).
    pub fn row_hash(self, prev: &str, fields: &[&[u8]]) -> String {
        fn feed<D: sha2::Digest>(mut d: D, prev: &str, fields: &[&[u8]]) -> Vec<u8> {
            d.update((prev.len() as u64).to_be_bytes());
            d.update(prev.as_bytes());
            for f in fields {
                d.update((f.len() as u64).to_be_bytes());
                d.update(f);
            }
            d.finalize().to_vec()
        }
        let bytes = match self {
            ChainHash::Sha256 => feed(sha2::Sha256::default(), prev, fields),
            ChainHash::Sm3 => feed(sm3::Sm3::default(), prev, fields),
        };
        let mut out = String::with_capacity(self.name().len() + 1 + bytes.len() * 2);
        out.push_str(self.name());
        out.push(':');
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// The algorithm a stored hash names.
    fn of(hash: &str) -> Option<ChainHash> {
        hash.split_once(':').and_then(|(a, _)| ChainHash::parse(a))
    }
}

/// The two chained tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Chained {
    EventLog,
    AuditLog,
}

impl Chained {
    pub const ALL: [Chained; 2] = [Chained::EventLog, Chained::AuditLog];

    pub fn table(self) -> &'static str {
        match self {
            Chained::EventLog => "event_log",
            Chained::AuditLog => "audit_log",
        }
    }

    /// The row's key and the fields the hash covers, in order.
    fn columns(self) -> &'static str {
        match self {
            Chained::EventLog => "case_no, seq, last_seq, at, body",
            Chained::AuditLog => "id, at, actor, action, detail",
        }
    }

    /// The order unsealed rows are taken in.
    fn unsealed_order(self) -> &'static str {
        match self {
            Chained::EventLog => "at, case_no, seq",
            Chained::AuditLog => "id",
        }
    }
}

/// One row as the hash sees it.
struct Row {
    key: Key,
    fields: [String; 5],
}

#[derive(Clone)]
enum Key {
    Event(String, i64),
    Audit(i64),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Event(case, seq) => write!(f, "case {case} event {seq}"),
            Key::Audit(id) => write!(f, "audit row {id}"),
        }
    }
}

fn read_row<R: SqlRow>(t: Chained, r: &R) -> Result<Row, sqlx::Error> {
    Ok(match t {
        Chained::EventLog => {
            let (case, seq, last): (String, i64, i64) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            Row {
                key: Key::Event(case.clone(), seq),
                fields: [
                    case,
                    seq.to_string(),
                    last.to_string(),
                    r.try_get(3)?,
                    r.try_get(4)?,
                ],
            }
        }
        Chained::AuditLog => {
            let id: i64 = r.try_get(0)?;
            Row {
                key: Key::Audit(id),
                fields: [
                    id.to_string(),
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ],
            }
        }
    })
}

fn hash_of(algo: ChainHash, t: Chained, prev: &str, place: i64, row: &Row) -> String {
    let place = place.to_string();
    let mut fields: Vec<&[u8]> = vec![t.table().as_bytes(), place.as_bytes()];
    fields.extend(row.fields.iter().map(|f| f.as_bytes()));
    algo.row_hash(prev, &fields)
}

/// How many rows one sealing transaction takes.
pub(crate) const SEAL_BATCH: i64 = 2000;

/// Seals up to `SEAL_BATCH` unsealed rows of each table; how many it sealed.
pub(crate) async fn seal<D: Dialect>(d: &D, algo: ChainHash) -> Result<u64, StoreError> {
    let mut sealed = 0;
    for t in Chained::ALL {
        let mut tx = d.begin().await?;
        q(D::LOCK_SEAL).execute(&mut *tx).await?;
        let n = seal_in(&mut *tx, t, algo).await?;
        tx.commit().await?;
        sealed += n;
    }
    Ok(sealed)
}

async fn seal_in<C: Conn + ?Sized>(
    tx: &mut C,
    t: Chained,
    algo: ChainHash,
) -> Result<u64, StoreError> {
    let table = t.table();
    let head = q(sqlx::AssertSqlSafe(format!(
        "SELECT chain_seq, hash FROM {table} WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1"
    )))
    .fetch_optional(&mut *tx)
    .await?;
    let (mut place, mut prev): (i64, String) = match head {
        Some(r) => (
            r.try_get(0)?,
            r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
        ),
        None => (0, String::new()),
    };
    let rows = q(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {table} WHERE hash IS NULL ORDER BY {} LIMIT {SEAL_BATCH}",
        t.columns(),
        t.unsealed_order()
    )))
    .fetch_all(&mut *tx)
    .await?;
    let mut updates = Vec::with_capacity(rows.len());
    for r in &rows {
        let row = read_row(t, r)?;
        place += 1;
        let hash = hash_of(algo, t, &prev, place, &row);
        prev.clone_from(&hash);
        updates.push((row.key, place, hash));
    }
    for chunk in updates.chunks(250) {
        let (vals, cond) = match t {
            Chained::EventLog => (
                "k1, k2, place, hash",
                "event_log.case_no = v.k1 AND event_log.seq = v.k2",
            ),
            Chained::AuditLog => ("k1, place, hash", "audit_log.id = v.k1"),
        };
        let per = if t == Chained::EventLog { 4 } else { 3 };
        let tuples: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * per;
                let ps: Vec<String> = (1..=per).map(|j| format!("${}", b + j)).collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        let sql = format!(
            "WITH v({vals}) AS (VALUES {}) UPDATE {table} SET chain_seq = v.place, hash = v.hash FROM v WHERE {cond}",
            tuples.join(", ")
        );
        let mut up = q(sqlx::AssertSqlSafe(sql));
        for (key, place, hash) in chunk {
            up = match key {
                Key::Event(case, seq) => up.bind(case.clone()).bind(*seq),
                Key::Audit(id) => up.bind(*id),
            };
            up = up.bind(*place).bind(hash.clone());
        }
        up.execute(&mut *tx).await?;
    }
    Ok(updates.len() as u64)
}

/// What checking one chain found.
#[derive(Clone, Debug, Serialize)]
pub struct ChainReport {
    pub table: Chained,
    /// Rows in the chain.
    pub sealed: u64,
    /// Rows not sealed yet (written in the last moment, or by a node whose
    /// sealer has not run).
    pub unsealed: u64,
    /// The last place and its hash: record it elsewhere to detect a rewrite
    /// of the whole chain later.
    pub head: Option<(i64, String)>,
    /// The first row where the chain breaks, and why.
    pub broken: Option<String>,
}

/// Walks both chains, on a connection from the dialect's read pool.
pub(crate) async fn verify_all<D: Dialect>(d: &D) -> Result<Vec<ChainReport>, StoreError> {
    let mut conn = d.reads().acquire().await?;
    let mut out = Vec::new();
    for t in Chained::ALL {
        out.push(verify(&mut *conn, t).await?);
    }
    Ok(out)
}

/// Walks one chain from its start.
pub(crate) async fn verify<C: Conn + ?Sized>(
    conn: &mut C,
    t: Chained,
) -> Result<ChainReport, StoreError> {
    let table = t.table();
    let unsealed: i64 = q(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE chain_seq IS NULL"
    )))
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    let mut report = ChainReport {
        table: t,
        sealed: 0,
        unsealed: unsealed as u64,
        head: None,
        broken: None,
    };
    let (mut place, mut prev) = (0i64, String::new());
    loop {
        let rows = q(sqlx::AssertSqlSafe(format!(
            "SELECT {}, chain_seq, hash FROM {table} WHERE chain_seq > $1 ORDER BY chain_seq LIMIT 5000",
            t.columns()
        )))
        .bind(place)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Ok(report);
        }
        let more = rows.len() == 5000;
        for r in &rows {
            let row = read_row(t, r)?;
            let at: i64 = r.try_get(5)?;
            let hash: Option<String> = r.try_get(6)?;
            if at != place + 1 {
                report.broken = Some(format!(
                    "{table}: place {} is missing (the row before {} was removed) / 第 {} 位缺失（{} 之前的记录被删除）",
                    place + 1,
                    row.key,
                    place + 1,
                    row.key
                ));
                return Ok(report);
            }
            let Some(hash) = hash else {
                report.broken = Some(format!(
                    "{table}: {} at place {at} has lost its hash / {} 的哈希被删除",
                    row.key, row.key
                ));
                return Ok(report);
            };
            let algo = ChainHash::of(&hash).unwrap_or_default();
            if hash_of(algo, t, &prev, at, &row) != hash {
                report.broken = Some(format!(
                    "{table}: {} at place {at} was changed after it was sealed / {} 在封存后被改动",
                    row.key, row.key
                ));
                return Ok(report);
            }
            place = at;
            prev = hash;
            report.sealed += 1;
            report.head = Some((place, prev.clone()));
        }
        if !more {
            return Ok(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_algorithm_names_itself_and_differs() {
        let a = ChainHash::Sha256.row_hash("", &[b"x"]);
        let b = ChainHash::Sm3.row_hash("", &[b"x"]);
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
        assert!(b.starts_with("sm3:") && b.len() == 4 + 64, "{b}");
        assert_eq!(ChainHash::of(&b), Some(ChainHash::Sm3));
    }

    #[test]
    fn fields_do_not_run_together() {
        let h = ChainHash::Sha256;
        assert_ne!(
            h.row_hash("", &[b"ab", b"c"]),
            h.row_hash("", &[b"a", b"bc"])
        );
        assert_ne!(h.row_hash("p", &[b"x"]), h.row_hash("", &[b"x"]));
    }

    #[test]
    fn sm3_matches_the_standards_example() {
        // GB/T 32905-2016, example 1: SM3("abc").
        use sha2::Digest;
        let d = sm3::Sm3::digest(b"abc");
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }
}
