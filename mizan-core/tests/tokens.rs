//! JWT and MWT through a real app: what is accepted, and every way a token is refused.
//!
//! Every refusal must look the same to the caller (401, one fixed message), so a client learns
//! nothing from it. Time comes from a `ManualClock`.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mizan_core::auth::{
    Jwt, MemorySessionStore, Mwt, MwtIdentity, TokenKind, TokenUser, MWT_HEADER,
};
use mizan_core::testing::{block_on, ManualClock, TestClient, TestResponse};
use mizan_core::{ApiError, Auth, Function, Identity, Mizan};
use serde_json::{json, Value};

const JWT_SECRET: &str = "tokens-test-jwt-secret-0123456789abcdef";
const MWT_SECRET: &str = "tokens-test-mwt-secret-0123456789abcdef";
const RSA_PRIVATE: &[u8] = include_bytes!("fixtures/test_rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("fixtures/test_rsa_public.pem");
const T0: u64 = 1_700_000_000;

struct Setup {
    app: Mizan,
    jwt: Jwt,
    sessions: Arc<MemorySessionStore>,
    clock: ManualClock,
}

/// An app with JWT identity (session validation on), MWT minting, and a guarded `whoami`.
fn setup(jwt: Jwt) -> Setup {
    let sessions = Arc::new(MemorySessionStore::new());
    let jwt = jwt.with_sessions(sessions.clone());
    let clock = ManualClock::at_unix(T0);
    let whoami = Function::new("whoami")
        .with_auth(Auth::Required)
        .handler(|req, _| async move { Ok::<_, ApiError>(req.identity().user_id.clone()) });
    let app = Mizan::builder()
        .with_function(whoami)
        .with_jwt(jwt.clone())
        .with_mwt(Mwt::new(MWT_SECRET))
        .with_clock(clock.clone())
        .build()
        .expect("valid app");
    Setup {
        app,
        jwt,
        sessions,
        clock,
    }
}

impl Setup {
    fn user(&self, id: &str, staff: bool) -> TokenUser {
        TokenUser {
            user_id: id.into(),
            sid: self.sessions.create(id),
            staff,
            superuser: false,
        }
    }

    fn whoami(&self, authorization: &str) -> TestResponse {
        let client = TestClient::new(&self.app).with_header("authorization", authorization);
        block_on(client.call("whoami", json!({})))
    }

    fn bearer(&self, token: &str) -> TestResponse {
        self.whoami(&format!("Bearer {token}"))
    }
}

fn hs(alg: Algorithm, secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims(sub: &str, sid: &str, kind: &str, iat: u64, exp: u64) -> Value {
    json!({"sub": sub, "sid": sid, "staff": false, "super": false, "type": kind, "iat": iat, "exp": exp})
}

fn assert_refused(response: &TestResponse, case: &str) {
    assert_eq!(response.status(), 401, "{case}: {:?}", response.json());
    assert_eq!(
        response.json(),
        json!({"error": {"code": "unauthenticated", "message": "invalid or expired credentials", "details": null}}),
        "{case}: a refusal says nothing more"
    );
}

#[test]
fn a_minted_access_token_identifies_its_user() {
    let s = setup(Jwt::hs256(JWT_SECRET));
    let pair = s.jwt.mint(&s.user("7", false), T0).unwrap();
    let reply = s.bearer(&pair.access);
    assert_eq!((reply.status().as_u16(), reply.result()), (200, json!("7")));
    assert_eq!(
        s.whoami(&format!("bearer {}", pair.access)).status(),
        200,
        "scheme is case-insensitive"
    );
    // No credentials: anonymous, so the guard answers 401 "authentication required".
    let anonymous = block_on(TestClient::new(&s.app).call("whoami", json!({})));
    assert_eq!(
        anonymous.json()["error"]["message"],
        "authentication required"
    );
}

#[test]
fn claims_and_lifetimes_follow_the_spec() {
    let s = setup(Jwt::hs256(JWT_SECRET));
    let pair = s.jwt.mint(&s.user("7", true), T0).unwrap();
    let access = s.jwt.verify(&pair.access, TokenKind::Access, T0).unwrap();
    let refresh = s.jwt.verify(&pair.refresh, TokenKind::Refresh, T0).unwrap();
    assert_eq!(
        (access.sub.as_str(), access.staff, access.superuser),
        ("7", true, false)
    );
    assert_eq!((access.iat, access.exp - access.iat), (T0, 300));
    assert_eq!(
        (refresh.exp - refresh.iat, refresh.sid),
        (604_800, access.sid)
    );
    let custom = Jwt::hs256(JWT_SECRET).with_access_ttl(Duration::from_secs(60));
    let pair = custom.mint(&s.user("7", false), T0).unwrap();
    assert_eq!(
        custom
            .verify(&pair.access, TokenKind::Access, T0)
            .unwrap()
            .exp,
        T0 + 60
    );
}

#[test]
fn every_forged_or_misused_token_is_refused_alike() {
    let s = setup(Jwt::hs256(JWT_SECRET));
    let user = s.user("7", false);
    let pair = s.jwt.mint(&user, T0).unwrap();
    let valid = claims("7", &user.sid, "access", T0, T0 + 300);
    let [header, payload, signature]: [&str; 3] = pair
        .access
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let tampered_payload = {
        let mut forged = valid.clone();
        forged["super"] = json!(true);
        format!("{header}.{}.{signature}", B64.encode(forged.to_string()))
    };
    let tampered_header = format!(
        "{}.{payload}.{signature}",
        B64.encode(r#"{"alg":"HS256","typ":"JWT","kid":"x"}"#)
    );
    let alg_none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(valid.to_string())
    );
    let rs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &valid,
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
    )
    .unwrap();
    let mwt = Mwt::new(MWT_SECRET)
        .mint(&Identity::user("7"), T0)
        .unwrap()
        .unwrap();

    let cases: Vec<(&str, String)> = vec![
        ("alg none", alg_none),
        (
            "another HMAC algorithm",
            hs(Algorithm::HS512, JWT_SECRET, &valid),
        ),
        ("RS256 where HS256 is configured", rs256),
        (
            "wrong key",
            hs(
                Algorithm::HS256,
                "some-other-secret-0123456789abcdefghij",
                &valid,
            ),
        ),
        ("tampered payload", tampered_payload),
        ("tampered header", tampered_header),
        (
            "expired",
            hs(
                Algorithm::HS256,
                JWT_SECRET,
                &claims("7", &user.sid, "access", T0 - 400, T0 - 100),
            ),
        ),
        (
            "issued in the future",
            hs(
                Algorithm::HS256,
                JWT_SECRET,
                &claims("7", &user.sid, "access", T0 + 60, T0 + 360),
            ),
        ),
        ("not yet valid (nbf)", {
            let mut c = valid.clone();
            c["nbf"] = json!(T0 + 60);
            hs(Algorithm::HS256, JWT_SECRET, &c)
        }),
        ("refresh token as access", pair.refresh.clone()),
        ("MWT as access", mwt),
        (
            "missing claims",
            hs(
                Algorithm::HS256,
                JWT_SECRET,
                &json!({"sub": "7", "exp": T0 + 300}),
            ),
        ),
        (
            "unknown session",
            hs(
                Algorithm::HS256,
                JWT_SECRET,
                &claims("7", "no-such-session", "access", T0, T0 + 300),
            ),
        ),
        ("garbage", "not-a-token".into()),
        ("three garbage parts", "a.b.c".into()),
    ];
    for (case, token) in &cases {
        assert_refused(&s.bearer(token), case);
    }
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", &pair.access] {
        assert_refused(&s.whoami(header), header);
    }
    // The genuine token still works after all that.
    assert_eq!(s.bearer(&pair.access).status(), 200);
}

#[test]
fn expiry_allows_the_leeway_and_no_more() {
    let s = setup(Jwt::hs256(JWT_SECRET));
    let pair = s.jwt.mint(&s.user("7", false), T0).unwrap();
    s.clock.advance(Duration::from_secs(305));
    assert_eq!(s.bearer(&pair.access).status(), 200, "within 5 s of leeway");
    s.clock.advance(Duration::from_secs(1));
    assert_refused(&s.bearer(&pair.access), "expired beyond the leeway");
}

#[test]
fn refresh_mints_access_only_from_a_live_refresh_token() {
    let s = setup(Jwt::hs256(JWT_SECRET));
    let user = s.user("7", false);
    let pair = s.jwt.mint(&user, T0).unwrap();
    let access = block_on(s.jwt.refresh(&pair.refresh, T0 + 10)).unwrap();
    assert_eq!(
        s.jwt
            .verify(&access, TokenKind::Access, T0 + 10)
            .unwrap()
            .sid,
        user.sid
    );
    assert!(
        block_on(s.jwt.refresh(&pair.access, T0)).is_err(),
        "access token used as refresh"
    );
    assert!(block_on(s.jwt.refresh("garbage", T0)).is_err());
    assert!(
        block_on(s.jwt.refresh(&pair.refresh, T0 + 604_800 + 6)).is_err(),
        "expired refresh"
    );
}

#[test]
fn destroying_the_session_revokes_every_token_at_once() {
    let s = setup(Jwt::hs256(JWT_SECRET));
    let user = s.user("7", false);
    let other = s.user("7", false);
    let pair = s.jwt.mint(&user, T0).unwrap();
    let renewed = block_on(s.jwt.refresh(&pair.refresh, T0)).unwrap();
    let other_pair = s.jwt.mint(&other, T0).unwrap();
    assert!(s.sessions.destroy(&user.sid));
    assert_refused(&s.bearer(&pair.access), "revoked access");
    assert_refused(&s.bearer(&renewed), "revoked renewed access");
    assert!(
        block_on(s.jwt.refresh(&pair.refresh, T0)).is_err(),
        "revoked refresh"
    );
    assert_eq!(
        s.bearer(&other_pair.access).status(),
        200,
        "another session is untouched"
    );
}

#[test]
fn rs256_signs_and_verifies_and_refuses_hs256_confusion() {
    let s = setup(Jwt::rs256(RSA_PRIVATE, RSA_PUBLIC).unwrap());
    let user = s.user("9", false);
    let pair = s.jwt.mint(&user, T0).unwrap();
    assert_eq!(s.bearer(&pair.access).result(), json!("9"));
    // The classic confusion: an HS256 token keyed with the (public) RSA key.
    let valid = claims("9", &user.sid, "access", T0, T0 + 300);
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &valid,
        &EncodingKey::from_secret(RSA_PUBLIC),
    )
    .unwrap();
    assert_refused(&s.bearer(&confused), "HS256 keyed with the RSA public key");
    assert!(Jwt::rs256(b"not a pem", RSA_PUBLIC).is_err());
}

#[test]
fn session_endpoint_mints_an_mwt_for_authenticated_callers_only() {
    let s = setup(Jwt::hs256(JWT_SECRET));
    let pair = s.jwt.mint(&s.user("7", true), T0).unwrap();
    let client =
        TestClient::new(&s.app).with_header("authorization", &format!("Bearer {}", pair.access));
    let reply = block_on(client.get("/api/mizan/session/"));
    let token = reply.json()["mwt"]
        .as_str()
        .expect("an mwt in the body")
        .to_owned();
    assert_eq!(reply.header(MWT_HEADER), Some(token.as_str()));
    assert_eq!(reply.json()["csrfToken"], Value::Null);
    let claims = Mwt::new(MWT_SECRET).verify(&token, T0).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.staff, claims.typ.as_str()),
        ("7", true, "mwt")
    );
    assert_eq!(claims.exp - claims.iat, 300);
    // The MWT is not a JWT: refused as a bearer token.
    assert_refused(&s.bearer(&token), "MWT as access");

    let anonymous = block_on(TestClient::new(&s.app).get("/api/mizan/session/"));
    assert_eq!(anonymous.json(), json!({"csrfToken": null}));
    assert_eq!(anonymous.header(MWT_HEADER), None);
}

#[test]
fn mwt_identity_trusts_valid_mwts_only() {
    let clock = ManualClock::at_unix(T0);
    let mwt = Mwt::new(MWT_SECRET);
    let whoami = Function::new("whoami")
        .with_auth(Auth::Staff)
        .handler(|req, _| async move { Ok::<_, ApiError>(req.identity().user_id.clone()) });
    let app = Mizan::builder()
        .with_function(whoami)
        .with_identity(MwtIdentity::new(mwt.clone()).with_clock(Arc::new(clock.clone())))
        .build()
        .unwrap();
    let call = |token: &str| {
        let client = TestClient::new(&app).with_header(MWT_HEADER, token);
        block_on(client.call("whoami", json!({})))
    };
    let staff = mwt
        .mint(&Identity::user("1").with_staff(true), T0)
        .unwrap()
        .unwrap();
    assert_eq!(call(&staff).result(), json!("1"));
    let plain = mwt.mint(&Identity::user("2"), T0).unwrap().unwrap();
    assert_eq!(call(&plain).status(), 403);

    let jwt = Jwt::hs256(JWT_SECRET);
    let user = TokenUser {
        user_id: "1".into(),
        sid: "s".into(),
        staff: true,
        superuser: false,
    };
    let access = jwt.mint(&user, T0).unwrap().access;
    let forged = hs(
        Algorithm::HS256,
        "wrong-secret-0123456789abcdefghijklmn",
        &json!({"sub": "1", "staff": true, "super": false, "iat": T0, "exp": T0 + 300, "typ": "mwt"}),
    );
    let wrong_typ = hs(
        Algorithm::HS256,
        MWT_SECRET,
        &json!({"sub": "1", "staff": true, "super": false, "iat": T0, "exp": T0 + 300, "typ": "jwt"}),
    );
    for (case, token) in [
        ("JWT as MWT", access),
        ("wrong key", forged),
        ("wrong typ", wrong_typ),
        ("garbage", "x".into()),
    ] {
        assert_refused(&call(&token), case);
    }
    clock.advance(Duration::from_secs(306));
    assert_refused(&call(&staff), "expired MWT");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let jwt = Jwt::hs256(JWT_SECRET);
    let mwt = Mwt::new(MWT_SECRET);
    let app = Mizan::builder()
        .with_jwt(jwt.clone())
        .with_mwt(mwt.clone())
        .with_cache(mizan_core::MemoryCache::new())
        .with_cache_secret("tokens-test-cache-secret-0123456789abc");
    let builder_debug = format!("{app:?}");
    let debug = format!("{jwt:?} {mwt:?} {builder_debug} {:?}", app.build().unwrap());
    for secret in [JWT_SECRET, MWT_SECRET, "tokens-test-cache-secret"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("redacted"));
}
