use mizan_core::client;

#[client]
async fn plain(message: String) -> String {
    message
}

fn main() {}
