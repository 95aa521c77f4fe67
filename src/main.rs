// publish.webhook makes several small allocations per contact; with mimalloc it sends 1M contacts
// in 50-70% of the CPU time the system allocator needs (docs/publish.md#benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    segflow::cli::main()
}
