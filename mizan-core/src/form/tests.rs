//! The demo's shapes (`contact`, `OrderLine`) through the whole validation.

use std::net::IpAddr;

use futures_executor::block_on;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::formset::{Body, Shape};
use super::*;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Topic {
    Sales,
    Support,
    Other,
}

#[derive(Debug, Deserialize, JsonSchema, garde::Validate)]
#[allow(dead_code)] // `topic` is only validated.
struct Contact {
    #[garde(length(chars, min = 1, max = 100))]
    name: String,
    #[garde(email)]
    email: String,
    #[garde(skip)]
    topic: Topic,
    #[garde(length(chars, min = 1, max = 2000))]
    message: String,
}

#[crate::async_trait]
impl Form for Contact {
    async fn clean(&self, _req: &Request) -> Result<(), Vec<Issue>> {
        if self.message.contains("spam") {
            return Err(vec![Issue::new("spam", "this message looks like spam")]);
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Deserialize, Serialize, JsonSchema, garde::Validate)]
struct OrderLine {
    #[garde(pattern(r"^[A-Z]{3}-[0-9]{3}$"))]
    sku: String,
    #[garde(range(min = 1, max = 99))]
    qty: u32,
}

impl Form for OrderLine {
    fn formset_options() -> FormsetOptions {
        FormsetOptions::new()
            .with_min_num(1)
            .with_max_num(20)
            .with_can_delete(true)
    }
}

/// A form with an ordered formset and optional fields.
#[derive(Debug, PartialEq, Deserialize, Serialize, JsonSchema, garde::Validate)]
struct Step {
    #[garde(length(chars, min = 1, max = 20))]
    title: String,
    /// Shown under the title.
    #[garde(length(chars, max = 5))]
    #[schemars(title = "Note", extend("x-widget" = "textarea"))]
    note: Option<String>,
    #[garde(skip)]
    #[serde(default = "one")]
    weight: i32,
}

fn one() -> i32 {
    1
}

impl Form for Step {
    fn meta() -> FormMeta {
        FormMeta::new().with_field(
            "title",
            FieldMeta::new()
                .with_choices([("wash", "Wash"), ("dry", "Dry")])
                .with_initial("wash"),
        )
    }

    fn formset_options() -> FormsetOptions {
        FormsetOptions::new()
            .with_can_order(true)
            .with_can_delete(true)
    }
}

#[derive(Clone)]
struct Taken(Vec<&'static str>);

#[derive(Debug, Deserialize, JsonSchema, garde::Validate)]
#[allow(dead_code)] // `address` is only validated.
struct Registration {
    #[garde(length(chars, min = 3))]
    username: String,
    #[garde(skip)]
    address: Option<IpAddr>,
}

#[crate::async_trait]
impl Form for Registration {
    async fn clean(&self, req: &Request) -> Result<(), Vec<Issue>> {
        let taken = req.state::<Taken>().map_err(|_| vec![])?;
        if taken.0.contains(&self.username.as_str()) {
            return Err(vec![
                Issue::new("taken", "this username is taken").at("username")
            ]);
        }
        Ok(())
    }
}

fn req() -> Request {
    Request::new(http::Request::new(bytes::Bytes::new()))
}

fn issues(spec: &FormSpec, body: &Value) -> Vec<Issue> {
    let body = serde_json::to_vec(body).unwrap();
    block_on(spec.validate(&body, &req())).expect("well-formed JSON")
}

/// `(dotted path, code)` of each issue, in order.
fn summary(issues: &[Issue]) -> Vec<(String, String)> {
    issues
        .iter()
        .map(|i| (i.dotted_path(), i.code().to_owned()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
        .collect()
}

fn contact() -> FormSpec {
    FormSpec::form::<Contact>("contact").unwrap()
}

fn order_lines() -> FormSpec {
    FormSpec::formset::<OrderLine>("place_order").unwrap()
}

fn valid_contact() -> Value {
    json!({"name": "Ann", "email": "ann@example.com", "topic": "sales", "message": "Hello"})
}

fn line(sku: &str, qty: i64) -> Value {
    json!({"sku": sku, "qty": qty})
}

#[test]
fn the_schema_lists_fields_in_declaration_order_with_their_constraints() {
    let spec = contact();
    let schema = spec.schema();
    assert_eq!(schema["name"], "contact");
    assert!(schema.get("formset").is_none());
    let names: Vec<&str> = spec.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["name", "email", "topic", "message"]);
    assert_eq!(
        schema["fields"][0],
        json!({
            "name": "name",
            "type": "string",
            "required": true,
            "label": "Name",
            "help_text": null,
            "widget": "text",
            "initial": null,
            "choices": null,
            "constraints": {"min_length": 1, "max_length": 100},
        })
    );
    assert_eq!(schema["fields"][1]["widget"], "email");
    assert_eq!(
        schema["fields"][1]["constraints"],
        json!({"format": "email"})
    );
    assert_eq!(
        schema["fields"][2]["choices"],
        json!([
            {"value": "sales", "label": "Sales"},
            {"value": "support", "label": "Support"},
            {"value": "other", "label": "Other"},
        ])
    );
    assert_eq!(schema["fields"][2]["widget"], "select");
    assert_eq!(schema["fields"][3]["constraints"]["max_length"], 2000);
}

#[test]
fn schemars_reads_the_garde_rules_into_the_json_schema() {
    let contact = contact();
    let properties = &contact.schema()["json_schema"]["properties"];
    assert_eq!(properties["name"]["minLength"], 1);
    assert_eq!(properties["name"]["maxLength"], 100);
    assert_eq!(properties["email"]["format"], "email");
    let lines = order_lines();
    let properties = &lines.schema()["json_schema"]["properties"];
    assert_eq!(properties["sku"]["pattern"], "^[A-Z]{3}-[0-9]{3}$");
    assert_eq!(properties["qty"]["minimum"], 1);
    assert_eq!(properties["qty"]["maximum"], 99);
}

#[test]
fn metadata_and_schema_attributes_describe_fields() {
    let spec = FormSpec::form::<Step>("step").unwrap();
    let fields = &spec.schema()["fields"];
    assert_eq!(
        fields[0]["choices"][1],
        json!({"value": "dry", "label": "Dry"})
    );
    assert_eq!(fields[0]["initial"], "wash");
    assert_eq!(fields[0]["widget"], "select");
    assert_eq!(fields[1]["label"], "Note");
    assert_eq!(fields[1]["help_text"], "Shown under the title.");
    assert_eq!(fields[1]["widget"], "textarea");
    assert_eq!(fields[1]["type"], "string");
    assert_eq!(fields[1]["required"], false);
    assert_eq!(fields[2]["initial"], 1);
    assert_eq!(fields[2]["required"], false);
    assert_eq!(fields[2]["widget"], "number");
}

#[test]
fn a_valid_contact_has_no_issue() {
    assert!(issues(&contact(), &valid_contact()).is_empty());
    assert!(block_on(contact().check(valid_contact().to_string().as_bytes(), &req())).is_ok());
}

#[test]
fn wrong_types_in_several_fields_are_all_reported() {
    let found = issues(
        &contact(),
        &json!({"name": 5, "email": true, "topic": 3, "message": ["hi"]}),
    );
    assert_eq!(
        summary(&found),
        pairs(&[
            ("name", "invalid_type"),
            ("email", "invalid_type"),
            ("topic", "invalid_type"),
            ("message", "invalid_type"),
        ])
    );
    assert_eq!(found[0].params()["expected"], "string");
    assert_eq!(found[0].message(), "expected text");
    assert_eq!(found[3].params()["expected"], "string");
}

#[test]
fn a_type_error_does_not_hide_a_rule_failure_elsewhere() {
    let found = issues(
        &order_lines(),
        &json!({"forms": [{"sku": "abc", "qty": "two"}]}),
    );
    assert_eq!(
        summary(&found),
        pairs(&[("forms.0.sku", "pattern"), ("forms.0.qty", "invalid_type")])
    );
}

#[test]
fn missing_required_fields() {
    let found = issues(&contact(), &json!({"email": "ann@example.com"}));
    assert_eq!(
        summary(&found),
        pairs(&[
            ("name", "required"),
            ("topic", "required"),
            ("message", "required")
        ])
    );
    assert_eq!(found[0].message(), "this field is required");
}

#[test]
fn null_is_required_for_a_plain_field_and_fine_for_an_option() {
    let mut data = valid_contact();
    data["name"] = Value::Null;
    data["topic"] = Value::Null;
    assert_eq!(
        summary(&issues(&contact(), &data)),
        pairs(&[("name", "required"), ("topic", "required")])
    );
    let step = FormSpec::form::<Step>("step").unwrap();
    assert!(issues(&step, &json!({"title": "wash", "note": null})).is_empty());
    assert_eq!(
        summary(&issues(
            &step,
            &json!({"title": "wash", "note": "too long"})
        )),
        pairs(&[("note", "max_length")])
    );
}

#[test]
fn unknown_fields_are_reported_and_stop_clean() {
    let mut data = valid_contact();
    data["message"] = json!("spam");
    data["is_admin"] = json!(true);
    let found = issues(&contact(), &data);
    assert_eq!(summary(&found), pairs(&[("is_admin", "unknown_field")]));
}

#[test]
fn a_choice_outside_the_list() {
    let mut data = valid_contact();
    data["topic"] = json!("jobs");
    let found = issues(&contact(), &data);
    assert_eq!(summary(&found), pairs(&[("topic", "invalid_choice")]));
    assert_eq!(
        found[0].params()["choices"],
        json!(["sales", "support", "other"])
    );
    // Choices from the metadata are enforced too.
    let step = FormSpec::form::<Step>("step").unwrap();
    let found = issues(&step, &json!({"title": "iron"}));
    assert_eq!(summary(&found), pairs(&[("title", "invalid_choice")]));
    assert_eq!(found[0].params()["choices"], json!(["wash", "dry"]));
}

#[test]
fn a_regex_near_miss() {
    let spec = order_lines();
    for sku in ["ABC-12", "abc-123", "ABC-1234", "ABC 123", "AB-123"] {
        let found = issues(&spec, &json!({"forms": [line(sku, 1)]}));
        assert_eq!(
            summary(&found),
            pairs(&[("forms.0.sku", "pattern")]),
            "{sku}"
        );
        assert_eq!(found[0].params()["pattern"], "^[A-Z]{3}-[0-9]{3}$");
    }
    assert!(issues(&spec, &json!({"forms": [line("ABC-123", 1)]})).is_empty());
}

#[test]
fn string_limits_count_characters_not_bytes() {
    let mut data = valid_contact();
    data["name"] = json!("é".repeat(100));
    assert!(issues(&contact(), &data).is_empty(), "100 characters fit");
    data["name"] = json!("é".repeat(101));
    let found = issues(&contact(), &data);
    assert_eq!(summary(&found), pairs(&[("name", "max_length")]));
    assert_eq!(found[0].params()["max"], 100);
    data["name"] = json!("");
    let found = issues(&contact(), &data);
    assert_eq!(summary(&found), pairs(&[("name", "min_length")]));
    assert_eq!(found[0].params()["min"], 1);
}

#[test]
fn number_limits() {
    let spec = order_lines();
    let found = issues(
        &spec,
        &json!({"forms": [line("ABC-123", 0), line("ABC-123", 100)]}),
    );
    assert_eq!(
        summary(&found),
        pairs(&[("forms.0.qty", "min_value"), ("forms.1.qty", "max_value")])
    );
    assert_eq!(found[0].params()["min"], 1);
    assert_eq!(found[1].params()["max"], 99);
    let found = issues(
        &spec,
        &json!({"forms": [line("ABC-123", -5), {"sku": "ABC-123", "qty": 1.5}]}),
    );
    assert_eq!(
        summary(&found),
        pairs(&[
            ("forms.0.qty", "min_value"),
            ("forms.1.qty", "invalid_type")
        ])
    );
}

#[test]
fn an_invalid_email() {
    let mut data = valid_contact();
    data["email"] = json!("ann@@example");
    let found = issues(&contact(), &data);
    assert_eq!(summary(&found), pairs(&[("email", "email")]));
    assert_eq!(found[0].message(), "enter a valid email address");
}

#[test]
fn clean_adds_a_form_level_issue_once_fields_are_valid() {
    let mut data = valid_contact();
    data["message"] = json!("buy spam now");
    let found = issues(&contact(), &data);
    assert_eq!(summary(&found), pairs(&[("", "spam")]));
    assert!(found[0].path().is_empty());
    // With a field invalid, `clean` does not run.
    data["email"] = json!("nope");
    assert_eq!(
        summary(&issues(&contact(), &data)),
        pairs(&[("email", "email")])
    );
}

#[test]
fn clean_sees_the_request_state() {
    let spec = FormSpec::form::<Registration>("register").unwrap();
    let req = req().with_state(Taken(vec!["ann"]));
    let found = block_on(spec.validate(br#"{"username": "ann"}"#, &req)).unwrap();
    assert_eq!(summary(&found), pairs(&[("username", "taken")]));
    let found = block_on(spec.validate(br#"{"username": "bob"}"#, &req)).unwrap();
    assert!(found.is_empty());
}

#[test]
fn what_serde_refuses_after_the_checks_is_invalid_without_the_value() {
    let spec = FormSpec::form::<Registration>("register").unwrap();
    let found = issues(&spec, &json!({"username": "bob", "address": "<script>"}));
    assert_eq!(summary(&found), pairs(&[("address", "invalid")]));
    assert!(!found[0].message().contains("script"));
}

#[test]
fn the_body_must_be_a_json_object() {
    let found = issues(&contact(), &json!(["name"]));
    assert_eq!(summary(&found), pairs(&[("", "invalid_type")]));
    assert_eq!(found[0].params()["expected"], "object");
    let err = block_on(contact().validate(b"{\"name\":", &req())).unwrap_err();
    assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    assert!(err.message().starts_with("malformed JSON"));
}

#[test]
fn check_answers_400_with_every_issue() {
    let err = block_on(contact().check(b"{}", &req())).unwrap_err();
    assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
    assert_eq!(err.code(), "bad_request");
    let issues = &err.details().unwrap()["issues"];
    assert_eq!(issues.as_array().unwrap().len(), 4);
    assert_eq!(
        issues[0],
        json!({"path": ["name"], "code": "required", "message": "this field is required", "params": {}})
    );
}

#[test]
fn a_script_value_never_comes_back_in_a_message() {
    let script = "<script>alert(1)</script>";
    let contact_issues = issues(
        &contact(),
        &json!({"name": script.repeat(10), "email": script, "topic": script, "message": script, script: script}),
    );
    let line_issues = issues(
        &order_lines(),
        &json!({"forms": [{"sku": script, "qty": script}, {"sku": 5, "qty": 1, "_delete": script}]}),
    );
    let all: Vec<&Issue> = contact_issues.iter().chain(&line_issues).collect();
    assert!(all.len() >= 7, "{all:?}");
    for issue in all {
        assert!(!issue.message().contains("<script"), "{issue:?}");
        assert!(!issue.message().contains("alert"), "{issue:?}");
        let params = Value::Object(issue.params().clone()).to_string();
        assert!(!params.contains("alert"), "{issue:?}");
    }
}

#[test]
fn the_formset_schema_carries_its_options() {
    let spec = order_lines();
    assert_eq!(
        spec.schema()["formset"],
        json!({"min_num": 1, "max_num": 20, "absolute_max": 1020, "can_delete": true, "can_order": false, "extra": 1})
    );
    assert_eq!(spec.schema()["fields"][0]["name"], "sku");
    assert_eq!(
        spec.schema()["fields"][1]["constraints"],
        json!({"min_value": 1, "max_value": 99})
    );
}

#[test]
fn a_formset_under_min_num() {
    let spec = order_lines();
    let found = issues(&spec, &json!({"forms": []}));
    assert_eq!(summary(&found), pairs(&[("forms", "too_few_forms")]));
    assert_eq!(found[0].params()["min"], 1);
    // Deleted forms do not count.
    let found = issues(
        &spec,
        &json!({"forms": [{"sku": "ABC-123", "qty": 1, "_delete": true}]}),
    );
    assert_eq!(summary(&found), pairs(&[("forms", "too_few_forms")]));
}

#[test]
fn a_formset_over_max_num_after_deletions() {
    let spec = order_lines();
    let mut forms: Vec<Value> = (0..21).map(|_| line("ABC-123", 1)).collect();
    let found = issues(&spec, &json!({ "forms": forms }));
    assert_eq!(summary(&found), pairs(&[("forms", "too_many_forms")]));
    assert_eq!(found[0].params()["max"], 20);
    forms[3]["_delete"] = json!(true);
    assert!(issues(&spec, &json!({ "forms": forms })).is_empty());
    forms.push(line("ABC-123", 1));
    let found = issues(&spec, &json!({ "forms": forms }));
    assert_eq!(summary(&found), pairs(&[("forms", "too_many_forms")]));
}

#[test]
fn an_invalid_form_marked_deleted_is_skipped() {
    let spec = order_lines();
    let body = json!({"forms": [
        line("ABC-123", 2),
        {"sku": "nope", "qty": "many", "_delete": true},
        line("XYZ-999", 200),
    ]});
    assert_eq!(
        summary(&issues(&spec, &body)),
        pairs(&[("forms.2.qty", "max_value")])
    );
}

#[test]
fn markers_need_their_option() {
    let spec = order_lines();
    let found = issues(
        &spec,
        &json!({"forms": [{"sku": "ABC-123", "qty": 1, "_order": 0}, {"sku": "ABC-123", "qty": 1, "_delete": "yes"}], "total": 2}),
    );
    assert_eq!(
        summary(&found),
        pairs(&[
            ("total", "unknown_field"),
            ("forms.0._order", "unknown_field"),
            ("forms.1._delete", "invalid_type"),
        ])
    );
}

#[test]
fn duplicate_or_negative_order() {
    let spec = FormSpec::formset::<Step>("steps").unwrap();
    let found = issues(
        &spec,
        &json!({"forms": [
            {"title": "wash", "_order": 1},
            {"title": "dry", "_order": 1},
            {"title": "dry", "_order": -1},
            {"title": "wash", "_order": "first"},
            {"title": "wash", "_order": 1, "_delete": true},
        ]}),
    );
    assert_eq!(
        summary(&found),
        pairs(&[
            ("forms.2._order", "min_value"),
            ("forms.3._order", "invalid_type"),
            ("forms.1._order", "duplicate_order"),
        ])
    );
    assert!(issues(
        &spec,
        &json!({"forms": [{"title": "wash", "_order": 1}, {"title": "dry", "_order": 0}]})
    )
    .is_empty());
}

#[test]
fn a_formset_body_of_the_wrong_shape() {
    let spec = order_lines();
    assert_eq!(
        summary(&issues(&spec, &json!([line("ABC-123", 1)]))),
        pairs(&[("", "invalid_type")])
    );
    assert_eq!(
        summary(&issues(&spec, &json!({}))),
        pairs(&[("forms", "required")])
    );
    assert_eq!(
        summary(&issues(&spec, &json!({"forms": {"0": line("ABC-123", 1)}}))),
        pairs(&[("forms", "invalid_type")])
    );
    assert_eq!(
        summary(&issues(&spec, &json!({"forms": [7]}))),
        pairs(&[("forms.0", "invalid_type")])
    );
}

/// A body of `n` small forms.
fn many_forms(n: usize) -> Vec<u8> {
    let mut body = br#"{"forms": ["#.to_vec();
    for i in 0..n {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"sku": "ABC-123", "qty": 1}"#);
    }
    body.extend_from_slice(b"]}");
    body
}

#[test]
fn the_decoder_keeps_at_most_absolute_max_forms() {
    let body = many_forms(100_000);
    let decoded = Body::decode(&body, 1_000).unwrap();
    let Shape::Forms { kept, total } = decoded.shape else {
        panic!("a list of forms")
    };
    assert_eq!(total, 100_000);
    assert_eq!(kept.len(), 1_000);
    assert!(kept.capacity() < 2_048, "capacity {}", kept.capacity());
    // The same bound as a body of exactly 1000 forms.
    let full = Body::decode(&many_forms(1_000), 1_000).unwrap();
    let Shape::Forms {
        kept: full_kept, ..
    } = full.shape
    else {
        panic!("a list of forms")
    };
    assert_eq!(full_kept.capacity(), kept.capacity());
}

#[test]
fn a_formset_over_absolute_max_is_refused_without_validating_forms() {
    let spec = order_lines();
    let found = block_on(spec.validate(&many_forms(100_000), &req())).unwrap();
    assert_eq!(summary(&found), pairs(&[("forms", "too_many_forms")]));
    assert_eq!(found[0].params()["max"], 1020);
    // Exactly at absolute_max: decoded, then too many for max_num.
    let found = block_on(spec.validate(&many_forms(1020), &req())).unwrap();
    assert_eq!(summary(&found), pairs(&[("forms", "too_many_forms")]));
    assert_eq!(found[0].params()["max"], 20);
}

#[test]
fn a_formset_argument_sets_deleted_forms_apart() {
    let lines: Formset<OrderLine> = serde_json::from_value(json!({"forms": [
        line("ABC-123", 2),
        {"sku": "junk", "qty": 0, "_delete": true},
        line("XYZ-999", 3),
    ]}))
    .unwrap();
    assert_eq!(
        lines.forms(),
        [
            OrderLine {
                sku: "ABC-123".into(),
                qty: 2
            },
            OrderLine {
                sku: "XYZ-999".into(),
                qty: 3
            },
        ]
    );
    assert_eq!(lines.deleted()[0]["sku"], "junk");
    // It serializes back to a value that decodes to the same formset.
    let again: Formset<OrderLine> =
        serde_json::from_value(serde_json::to_value(&lines).unwrap()).unwrap();
    assert_eq!(again.forms(), lines.forms());
    assert_eq!(again.deleted(), lines.deleted());
}

#[test]
fn a_formset_argument_is_sorted_by_order() {
    let steps: Formset<Step> = serde_json::from_value(json!({"forms": [
        {"title": "last"},
        {"title": "second", "_order": 5},
        {"title": "first", "_order": 0},
    ]}))
    .unwrap();
    let titles: Vec<&str> = steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, ["first", "second", "last"]);
}

#[test]
fn a_formset_argument_over_absolute_max_fails_to_decode() {
    let body = many_forms(1021);
    let err = serde_json::from_slice::<Formset<OrderLine>>(&body).unwrap_err();
    assert!(err.to_string().contains("at most 1020"), "{err}");
    let err = serde_json::from_str::<Formset<OrderLine>>(r#"{"forms": [{"sku": 1, "qty": 1}]}"#)
        .unwrap_err();
    assert!(err.to_string().contains("form 0"), "{err}");
}

#[test]
fn metadata_for_a_missing_field_is_a_build_error() {
    #[derive(Deserialize, JsonSchema, garde::Validate)]
    struct Small {
        #[garde(skip)]
        #[allow(dead_code)]
        a: String,
    }
    impl Form for Small {
        fn meta() -> FormMeta {
            FormMeta::new().with_field("b", FieldMeta::new().with_label("B"))
        }
    }
    let err = FormSpec::form::<Small>("small").unwrap_err();
    assert!(
        matches!(err, FormError::UnknownField { ref field, .. } if field == "b"),
        "{err}"
    );
}

#[test]
fn a_form_must_be_a_struct_with_a_valid_name() {
    #[derive(Deserialize, JsonSchema, garde::Validate)]
    #[allow(dead_code)]
    struct Wrapper(#[garde(skip)] String);
    impl Form for Wrapper {}
    assert!(matches!(
        FormSpec::form::<Wrapper>("wrapper"),
        Err(FormError::NotAStruct { .. })
    ));
    assert!(matches!(
        FormSpec::form::<Contact>("con tact"),
        Err(FormError::Name { .. })
    ));
}

#[test]
fn contradictory_formset_options_are_a_build_error() {
    #[derive(Deserialize, JsonSchema, garde::Validate)]
    struct Line {
        #[garde(skip)]
        #[allow(dead_code)]
        a: String,
    }
    impl Form for Line {
        fn formset_options() -> FormsetOptions {
            FormsetOptions::new().with_min_num(5).with_max_num(2)
        }
    }
    assert!(matches!(
        FormSpec::formset::<Line>("lines"),
        Err(FormError::Formset { .. })
    ));
}

#[test]
fn validation_futures_can_cross_threads() {
    fn assert_send<T: Send>(_: &T) {}
    let spec = contact();
    let req = req();
    let future = spec.validate(b"{}", &req);
    assert_send(&future);
    drop(future);
    assert_send(&spec);
    fn assert_sync<T: Sync>(_: &T) {}
    assert_sync(&spec);
}
