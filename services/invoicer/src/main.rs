//! Entry point of the `invoicer` binary.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: a one-page render allocates and frees many small
/// objects, and glibc's malloc took about a sixth of the render time in a profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut stdout = std::io::stdout();
    match invoicer::run(args, &mut stdout).await {
        Ok(code) => code,
        // A reader such as `head` closed the pipe, so the output it wanted is out.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
