//! Starts the credential endpoint with dummy credentials for load tests
//! (`shell/bench-endpoint.sh`). Prints `URL TOKEN` on one line of stdout, then serves
//! until stdin closes.

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use breakglass::secret::{Credentials, Secret};
use breakglass::server::{CredentialState, Endpoint};
use tokio::sync::watch;

// The same runtime as a real run: one thread (`breakglass::run::runtime`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let expiration = now + 3600;
    let state = CredentialState::Valid {
        credentials: Credentials {
            access_key_id: "ASIABENCHMARKEXAMPLE".into(),
            secret_access_key: Secret::new("bench/secret/access/key/EXAMPLEKEY0123456"),
            session_token: Secret::new("FwoGZXIvYXdzEBENCHMARK".repeat(30)),
            expiration,
        },
        advertise_until: UNIX_EPOCH + Duration::from_secs(expiration - 900),
    };
    let (_tx, rx) = watch::channel(state);
    let endpoint = Endpoint::start(rx, None).await?;
    println!("{} {}", endpoint.url, endpoint.token.expose());

    // Serve until stdin closes (the script holds it open).
    tokio::task::spawn_blocking(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 256];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    })
    .await?;

    endpoint.shutdown().await;
    Ok(())
}
