//! `plantao completions` and `plantao man`: the shell completion scripts and the manual pages,
//! generated from the command line's own definition, so they never fall behind it.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, Shell};
use crate::failure::Failure;

pub fn completions(shell: Shell) -> Result<(), Failure> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Written whole into memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "plantao", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)
        .map_err(|e| Failure::Usage(format!("cannot print the completion script: {e}")))
}

/// `plantao(1)` on stdout, or with `dir` one page per command and subcommand written there.
pub fn man(dir: Option<&Path>) -> Result<(), Failure> {
    let mut root = Cli::command();
    root.build();
    let Some(dir) = dir else {
        return render(&root, &mut std::io::stdout().lock())
            .map_err(|e| Failure::Usage(format!("cannot print the manual page: {e}")));
    };
    let mut pages = vec![("plantao".to_owned(), root.clone())];
    gather(&root, "plantao", &mut pages);
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", dir.display())))?;
    for (name, command) in &pages {
        let path = dir.join(format!("{name}.1"));
        std::fs::File::create(&path)
            .and_then(|mut file| render(command, &mut file))
            .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))?;
    }
    println!("{} pages written to {}", pages.len(), dir.display());
    Ok(())
}

/// Every subcommand of `command` (but `help`), depth first, as `plantao-token-create` with its
/// usage line reading `plantao token create`.
fn gather(command: &clap::Command, path: &str, pages: &mut Vec<(String, clap::Command)>) {
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("{path}-{}", sub.get_name());
        let bin = name.replace('-', " ");
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(bin)
            .display_name(name.clone());
        gather(sub, &name, pages);
        pages.push((name, page));
    }
}

fn render(command: &clap::Command, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command.clone())
        .source(format!("plantao {}", env!("CARGO_PKG_VERSION")))
        .manual("plantao manual")
        .render(out)
}
