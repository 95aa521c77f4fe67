fn main() -> std::process::ExitCode {
    segflow::cli::main()
}
