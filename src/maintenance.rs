//! `govflow backup`, `restore` and `verify`: keeping a database safe. A
//! SQLite backup is `VACUUM INTO` — one consistent snapshot taken while the
//! server goes on writing — plus the blobs folder; a restore copies it into
//! place and checks it before anything serves from it. PostgreSQL is backed
//! up with its own tools (docs/security.md).

use govflow_engine::app::check::{CheckReport, check};
use govflow_engine::store::{Options, Store};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::from(2)
    })
}

async fn open(db: &str, pg_schema: Option<String>) -> Result<Store, String> {
    let opts = Options {
        create: false,
        pg_schema,
        ..Options::default()
    };
    Store::open(db, &opts)
        .await
        .map_err(|e| format!("cannot open {db}: {e}"))
}

fn report(db: &str, r: &CheckReport) -> ExitCode {
    println!(
        "{db}: {} cases, {} events; integrity {}; {} case(s) whose events do not rebuild their snapshot",
        r.cases,
        r.events,
        if r.integrity.is_empty() {
            "ok"
        } else {
            "FAILED"
        },
        r.mismatched.len()
    );
    for p in &r.integrity {
        println!("  integrity: {p}");
    }
    for c in &r.chains {
        let state = match &c.broken {
            Some(_) => "BROKEN",
            None => "ok",
        };
        let head = c
            .head
            .as_ref()
            .map_or("empty".to_string(), |(n, h)| format!("head {n} {h}"));
        println!(
            "  chain {}: {state}; {} sealed, {} not sealed yet; {head}",
            c.table.table(),
            c.sealed,
            c.unsealed
        );
        if let Some(b) = &c.broken {
            println!("  chain {}: {b}", c.table.table());
        }
    }
    for c in &r.mismatched {
        println!("  case {c}: its events do not rebuild its snapshot");
    }
    if r.is_sound() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn backup(db: &str, to: &Path) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async {
        let store = open(db, None).await?;
        let t0 = std::time::Instant::now();
        store.backup_to(to).await.map_err(|e| e.to_string())?;
        store.close().await;
        Ok::<_, String>(t0.elapsed())
    });
    match result {
        Ok(took) => {
            println!(
                "backed up {db} to {} in {:.1} s (blobs in {}.blobs)",
                to.display(),
                took.as_secs_f64(),
                to.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn restore(from: &Path, db: &str, force: bool) -> ExitCode {
    let Some(file) = db.strip_prefix("sqlite://").map(PathBuf::from) else {
        eprintln!(
            "error: restore writes a SQLite file (`--db sqlite://FILE`); restore PostgreSQL with pg_restore"
        );
        return ExitCode::from(2);
    };
    if !from.is_file() {
        eprintln!("error: no backup file {}", from.display());
        return ExitCode::from(2);
    }
    if file.exists() && !force {
        eprintln!(
            "error: {} exists; stop the server and add --force to replace it",
            file.display()
        );
        return ExitCode::from(1);
    }
    let sibling = |p: &Path, ext: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    let copied = (|| -> std::io::Result<()> {
        // A stale write-ahead log beside the target would be read as its own.
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(sibling(&file, ext));
        }
        std::fs::copy(from, &file)?;
        let (blobs, dest) = (sibling(from, ".blobs"), sibling(&file, ".blobs"));
        if blobs.is_dir() {
            let _ = std::fs::remove_dir_all(&dest);
            copy_dir(&blobs, &dest)?;
        }
        Ok(())
    })();
    if let Err(e) = copied {
        eprintln!(
            "error: cannot restore {} to {}: {e}",
            from.display(),
            file.display()
        );
        return ExitCode::from(1);
    }
    println!("restored {} to {}", from.display(), file.display());
    verify(db, None)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dst = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dst)?;
        } else {
            std::fs::copy(entry.path(), dst)?;
        }
    }
    Ok(())
}

pub fn verify(db: &str, pg_schema: Option<String>) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(async {
        let store = open(db, pg_schema).await?;
        let r = check(&store).await.map_err(|e| e.to_string());
        store.close().await;
        r
    }) {
        Ok(r) => report(db, &r),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
