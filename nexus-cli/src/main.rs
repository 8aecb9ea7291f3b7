//! `nexus`: call Nexus operations, compare service definitions, manage the endpoint registry and
//! look into operation stores from a terminal. `nexus --help` lists the commands and exit codes.

mod call;
mod connect;
mod definition;
mod endpoint;
mod fail;
mod load;
mod ops;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::fail::{EXIT_CODES, Failure};

/// Call Nexus operations, compare definitions, manage endpoints and inspect stores.
#[derive(Debug, Parser)]
#[command(name = "nexus", version, after_help = EXIT_CODES)]
struct Cli {
    /// The endpoint registry file (TOML) that names endpoints.
    #[arg(long, global = true, value_name = "FILE", env = "NEXUS_REGISTRY", default_value = connect::DEFAULT_REGISTRY)]
    registry: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Call an operation and print its result as JSON (an asynchronous one is awaited).
    Call(call::CallArgs),
    /// Cancel an asynchronous operation by its token.
    Cancel(call::CancelArgs),
    /// Export a definition, or compare two.
    #[command(subcommand)]
    Definition(definition::DefinitionCommand),
    /// List, add or remove the registry's endpoints (audited).
    Endpoint {
        /// Append the audit of changes to FILE [default: the registry's name with `.audit.jsonl`].
        #[arg(long, value_name = "FILE")]
        audit_log: Option<PathBuf>,
        /// Who makes the change, in the audit log [default: $USER].
        #[arg(long = "as", value_name = "NAME")]
        as_user: Option<String>,
        #[command(subcommand)]
        command: endpoint::EndpointCommand,
    },
    /// List, show or cancel a caller's operations in its store.
    #[command(subcommand)]
    Ops(ops::OpsCommand),
    /// List or retry a handler's dead completion deliveries in its store.
    #[command(subcommand)]
    Deliveries(ops::DeliveriesCommand),
    /// Call an operation many times at once and summarize latencies and throughput.
    Load(load::LoadArgs),
    /// Print a shell completion script: `nexus completions bash > /etc/bash_completion.d/nexus`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let registry = cli.registry;
    match cli.command {
        Command::Call(args) => call::call(args, &registry).await,
        Command::Cancel(args) => call::cancel(args, &registry).await,
        Command::Definition(command) => definition::run(command, &registry).await,
        Command::Endpoint {
            audit_log,
            as_user,
            command,
        } => endpoint::run(command, &registry, audit_log.as_deref(), as_user.as_deref()),
        Command::Ops(command) => ops::ops(command).await,
        Command::Deliveries(command) => ops::deliveries(command).await,
        Command::Load(args) => load::run(args, &registry).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "nexus", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            fail::report(&Failure::no_answer(format!(
                "cannot start the runtime: {e}"
            )));
            return ExitCode::from(fail::NO_ANSWER);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            fail::report(&failure);
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
