//! `nexus definition export` and `nexus definition diff`.

use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};
use nexus_cli::diff::{Level, Report, diff};
use nexus_runtime::definition::Definition;

use crate::connect::{ConnectArgs, resolve_endpoint};
use crate::fail::{Failure, OPERATION_FAILED};

/// `nexus definition …`.
#[derive(Debug, clap::Subcommand)]
pub enum DefinitionCommand {
    /// Print a definition: a committed file's, or a running handler's (served at
    /// `GET {base}/definitions` when the handler enables it).
    Export {
        /// A definition file, or a handler's base URL or registry name.
        source: String,
        /// Write it to FILE instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Compare two definitions; exit code 1 when a change breaks the old one's callers.
    Diff {
        /// The old definition: a file, or a handler's base URL or registry name.
        old: String,
        /// The new definition: a file, or a handler's base URL or registry name.
        new: String,
        /// `human` (default) or `json`.
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

/// Output formats of `definition diff`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// One line per change, breaking ones first, and a summary.
    Human,
    /// `{"breaking": N, "compatible": N, "newVersion": N, "changes": [...]}`.
    Json,
}

/// Reads a definition from a file, or from a running handler.
async fn load(source: &str, connect: &ConnectArgs, registry: &Path) -> Result<Definition, Failure> {
    let path = Path::new(source);
    if !source.contains("://") && (path.exists() || source.ends_with(".json")) {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read {source}: {e}")))?;
        return serde_json::from_str(&text)
            .map_err(|e| Failure::usage(format!("{source} is not a service definition: {e}")));
    }
    let url = resolve_endpoint(source, registry)?;
    connect
        .transport(&url)?
        .fetch_definition(connect.timeout)
        .await
        .map_err(Failure::from)
}

/// Runs `nexus definition …`.
pub async fn run(command: DefinitionCommand, registry: &Path) -> Result<(), Failure> {
    match command {
        DefinitionCommand::Export {
            source,
            output,
            connect,
        } => {
            let definition = load(&source, &connect, registry).await?;
            let text = definition.to_json_pretty();
            match output {
                Some(path) => std::fs::write(&path, text)
                    .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display()))),
                None => {
                    anstream::print!("{text}");
                    Ok(())
                }
            }
        }
        DefinitionCommand::Diff {
            old,
            new,
            format,
            connect,
        } => {
            let old = load(&old, &connect, registry).await?;
            let new = load(&new, &connect, registry).await?;
            let report = diff(&old, &new);
            match format {
                Format::Human => print_human(&report),
                Format::Json => print_json(&report),
            }
            if report.is_breaking() {
                return Err(Failure::quiet(OPERATION_FAILED));
            }
            Ok(())
        }
    }
}

fn print_json(report: &Report) {
    let value = serde_json::json!({
        "breaking": report.count(Level::Breaking),
        "compatible": report.count(Level::Compatible),
        "newVersion": report.count(Level::NewVersion),
        "changes": report.changes,
    });
    anstream::println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

fn print_human(report: &Report) {
    if report.changes.is_empty() {
        anstream::println!("no changes");
        return;
    }
    for change in &report.changes {
        let (style, label) = match change.level {
            Level::Breaking => (
                Style::new().bold().fg_color(Some(AnsiColor::Red.into())),
                "breaking   ",
            ),
            Level::NewVersion => (
                Style::new().fg_color(Some(AnsiColor::Yellow.into())),
                "new version",
            ),
            Level::Compatible => (
                Style::new().fg_color(Some(AnsiColor::Green.into())),
                "compatible ",
            ),
        };
        anstream::println!("{style}{label}{style:#}  {change}  [{}]", change.kind);
    }
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    anstream::println!(
        "{}, {}{}",
        plural(report.count(Level::Breaking), "breaking change"),
        plural(report.count(Level::Compatible), "compatible change"),
        match report.count(Level::NewVersion) {
            0 => String::new(),
            n => format!(", {}", plural(n, "new version")),
        }
    );
}
