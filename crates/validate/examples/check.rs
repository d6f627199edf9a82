//! Prints the findings for files given on the command line (development aid; the product's
//! `falco-analyst check FILE...` command is the user-facing one).

fn main() {
    let mut any = false;
    for path in std::env::args().skip(1) {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for f in fa_validate::check_document(&text) {
                    any = true;
                    println!("{path}: {f}");
                }
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
    std::process::exit(i32::from(any));
}
