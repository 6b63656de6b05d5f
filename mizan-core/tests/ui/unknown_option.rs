use mizan_core::{client, ApiError};

#[client(contxt = "user")]
async fn typo(user_id: i64) -> Result<i64, ApiError> {
    Ok(user_id)
}

fn main() {}
