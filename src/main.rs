fn main() -> std::process::ExitCode {
    tradeauth::cli::run()
}
