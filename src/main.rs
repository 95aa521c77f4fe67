// Per-row work (contacts to JSON, dataset rows) makes many small allocations; mimalloc serves
// them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    segflow::cli::main()
}
