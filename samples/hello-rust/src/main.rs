//! Hello world for WarpGrid in Rust (std only), WAGI convention (WASI preview 1 command).
//! Reads PATH_INFO from the environment and writes the CGI header, a blank line and the body.
use std::io::Write;

fn main() {
    let path = std::env::var("PATH_INFO").unwrap_or_default();
    let response = format!("Content-Type: text/plain\n\nHello from Rust on WarpGrid! You asked for {path}\n");
    let mut out = std::io::stdout().lock();
    if out.write_all(response.as_bytes()).and_then(|()| out.flush()).is_err() {
        std::process::exit(1);
    }
}
