use mizan_core::{client, ApiError};

#[client]
fn echo(message: String) -> Result<String, ApiError> {
    Ok(message)
}

fn main() {}
