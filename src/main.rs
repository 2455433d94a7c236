//! The `megatorrent` command line: see `megatorrent --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
