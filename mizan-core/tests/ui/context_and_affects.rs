use mizan_core::{client, ApiError};

#[client(context = "user", affects = "user")]
async fn both(user_id: i64) -> Result<i64, ApiError> {
    Ok(user_id)
}

fn main() {}
