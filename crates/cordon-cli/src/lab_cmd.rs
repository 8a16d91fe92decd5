//! `cordon lab`: network namespaces for the example company, with an
//! agent in each workload's namespace.

use std::process::ExitCode;

use anyhow::Context;
use cordon_agent::lab as lab_mod;

use crate::args::{LabAction, LabArgs};
use crate::{EXIT_FAILURE, outln};

/// `cordon lab`
pub fn run(args: &LabArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        LabAction::Up => match lab_mod::up() {
            Ok(()) => {
                for ((name, addr), addr6) in lab_mod::HOSTS.into_iter().zip(lab_mod::HOSTS_V6) {
                    outln!("{:<26} {addr:<15} {addr6}", lab_mod::namespace(name));
                }
                if let Some(policy) = &args.policy {
                    let exe =
                        std::env::current_exe().context("cannot find the cordon executable")?;
                    match lab_mod::start_agents(&exe, policy, args.hosts.as_deref()) {
                        Ok(started) => {
                            for (ns, pid) in started {
                                outln!("agent started in {ns} (pid {pid})");
                            }
                        }
                        Err(e) => {
                            lab_mod::stop_agents();
                            lab_mod::down();
                            eprintln!("error: {e} (everything created was removed)");
                            return Ok(ExitCode::from(EXIT_FAILURE));
                        }
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("error: {e} (everything created was removed)");
                Ok(ExitCode::from(EXIT_FAILURE))
            }
        },
        LabAction::Down => {
            lab_mod::stop_agents();
            lab_mod::down();
            outln!("lab removed");
            Ok(ExitCode::SUCCESS)
        }
        LabAction::Status => {
            for (ns, there) in lab_mod::status() {
                let name = ns.trim_start_matches("cordon-");
                let agent = if lab_mod::agent_running(name) {
                    "  agent running"
                } else {
                    ""
                };
                outln!("{ns:<26} {}{agent}", if there { "up" } else { "absent" });
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
