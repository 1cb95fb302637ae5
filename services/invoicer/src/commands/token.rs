//! `invoicer token new`: a fresh access token and the entry a server admits it with.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::TokenNewArgs;
use crate::output;

pub(crate) fn new(args: TokenNewArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitCode> {
    let token = invoicer_kit::auth::generate_token()?;
    let sha256 = invoicer_kit::auth::token_sha256_hex(&token);
    output::new_token(out, &token, args.role, &sha256)?;
    Ok(ExitCode::SUCCESS)
}
