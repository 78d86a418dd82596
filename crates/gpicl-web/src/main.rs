//! Entry point of the web page (built by trunk for `wasm32-unknown-unknown`).

#[cfg(target_arch = "wasm32")]
fn main() {
    gpicl_web::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("gpicl-web is the browser app: serve it with `cargo xtask serve`.");
    std::process::exit(2);
}
