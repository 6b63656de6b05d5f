use mizan_core::{client, ApiError};

#[client(form = "contact")]
async fn contact(name: String, email: String) -> Result<bool, ApiError> {
    Ok(!name.is_empty() && !email.is_empty())
}

fn main() {}
