use mizan_core::{client, ApiError};

#[client(auth = "admin")]
async fn guarded() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
