//! The canonical KDL v2 text of an [`Ir`]: fixed node order, four-space indentation, every
//! string value quoted, booleans as `#true`, one trailing newline. The same IR always gives the
//! same bytes.

use std::fmt::Write as _;

use super::{Field, Ir, TypeDef, TypeExpr};
use crate::escape::short_escape;

/// The IR as a KDL v2 document (see `docs/IR.md`).
pub fn to_kdl(ir: &Ir) -> String {
    let mut out = String::from("mizan-ir version=\"1\"\n");
    for (name, params) in &ir.contexts {
        let _ = write!(out, "context {}", quote(name));
        block(&mut out, 0, |out, depth| {
            for param in params {
                line(
                    out,
                    depth,
                    &format!("param {}", quote(&param.name)),
                    &param.ty,
                    param.optional,
                );
            }
        });
    }
    for function in &ir.functions {
        let _ = write!(
            out,
            "function {} kind={}",
            quote(&function.name),
            quote(function.kind.as_str())
        );
        if let Some(context) = &function.context {
            let _ = write!(out, " context={}", quote(context));
        }
        block(&mut out, 0, |out, depth| {
            for arg in &function.args {
                line(
                    out,
                    depth,
                    &format!("arg {}", quote(&arg.name)),
                    &arg.ty,
                    arg.optional,
                );
            }
            line(out, depth, "returns", &function.returns, false);
            for target in &function.affects {
                indent(out, depth);
                let _ = write!(out, "affects {}", quote(&target.context));
                if let Some(f) = &target.function {
                    let _ = write!(out, " function={}", quote(f));
                }
                out.push('\n');
            }
            if let Some(auth) = &function.auth {
                indent(out, depth);
                let _ = writeln!(out, "auth {}", quote(auth));
            }
            for transport in &function.transports {
                indent(out, depth);
                let _ = writeln!(out, "transport {}", quote(transport));
            }
            for upload in &function.uploads {
                indent(out, depth);
                let _ = writeln!(out, "upload {}", quote(upload));
            }
            if let Some(form) = &function.form {
                indent(out, depth);
                match &form.formset {
                    None => {
                        let _ = writeln!(out, "form {}", quote(&form.name));
                    }
                    Some(set) => {
                        let _ = write!(
                            out,
                            "formset {} arg={} min_num={} absolute_max={}",
                            quote(&form.name),
                            quote(&set.arg),
                            set.min_num,
                            set.absolute_max
                        );
                        if let Some(max) = set.max_num {
                            let _ = write!(out, " max_num={max}");
                        }
                        for (flag, on) in
                            [("can_delete", set.can_delete), ("can_order", set.can_order)]
                        {
                            if on {
                                let _ = write!(out, " {flag}=#true");
                            }
                        }
                        let _ = writeln!(out, " extra={}", set.extra);
                    }
                }
            }
        });
    }
    for (name, def) in &ir.types {
        let _ = write!(out, "type {}", quote(name));
        match def {
            TypeDef::Struct(fields) => {
                out.push_str(" kind=\"struct\"");
                block(&mut out, 0, |out, depth| fields_lines(out, depth, fields));
            }
            TypeDef::Enum(values) => {
                out.push_str(" kind=\"enum\"");
                block(&mut out, 0, |out, depth| {
                    for value in values {
                        indent(out, depth);
                        let _ = writeln!(out, "value {}", quote(value));
                    }
                });
            }
            TypeDef::Union(variants) => {
                out.push_str(" kind=\"union\"");
                block(&mut out, 0, |out, depth| {
                    for variant in variants {
                        line(out, depth, "variant", variant, false);
                    }
                });
            }
            TypeDef::Alias(ty) => {
                out.push_str(" kind=\"alias\"");
                block(&mut out, 0, |out, depth| line(out, depth, "is", ty, false));
            }
        }
    }
    out
}

/// ` {` … `}` with the children at `depth + 1`.
fn block(out: &mut String, depth: usize, children: impl FnOnce(&mut String, usize)) {
    out.push_str(" {\n");
    children(out, depth + 1);
    indent(out, depth);
    out.push_str("}\n");
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("    ");
    }
}

/// `head type="…" [optional=#true]`, or with `literal="…"`, or an inline object block.
fn line(out: &mut String, depth: usize, head: &str, ty: &TypeExpr, optional: bool) {
    indent(out, depth);
    out.push_str(head);
    match ty {
        TypeExpr::Literal(value) => {
            let _ = write!(out, " literal={}", quote(value));
        }
        TypeExpr::Object(_) => out.push_str(" type=\"object\""),
        other => {
            let _ = write!(out, " type={}", quote(&other.spelling()));
        }
    }
    if optional {
        out.push_str(" optional=#true");
    }
    match ty {
        TypeExpr::Object(fields) => {
            block(out, depth, |out, depth| fields_lines(out, depth, fields))
        }
        _ => out.push('\n'),
    }
}

fn fields_lines(out: &mut String, depth: usize, fields: &[Field]) {
    for field in fields {
        line(
            out,
            depth,
            &format!("field {}", quote(&field.name)),
            &field.ty,
            field.optional,
        );
    }
}

/// A KDL v2 quoted string.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if let Some(escape) = short_escape(c) {
            out.push_str(escape);
            continue;
        }
        match c {
            // Controls, the KDL newlines U+2028/U+2029, and the code points KDL v2 forbids
            // literally: the direction controls and the BOM.
            c if c.is_control()
                || matches!(
                    c,
                    '\u{200E}'
                        | '\u{200F}'
                        | '\u{2028}'
                        | '\u{2029}'
                        | '\u{202A}'..='\u{202E}'
                        | '\u{2066}'..='\u{2069}'
                        | '\u{FEFF}'
                ) =>
            {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_always_quoted_and_escaped() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u{1}\"");
        assert_eq!(quote("é"), "\"é\"");
    }

    #[test]
    fn code_points_kdl_forbids_literally_are_escaped() {
        assert_eq!(
            quote("\u{202a}\u{202e}\u{2066}\u{2069}\u{200e}\u{feff}\u{2028}"),
            "\"\\u{202a}\\u{202e}\\u{2066}\\u{2069}\\u{200e}\\u{feff}\\u{2028}\""
        );
        let document = format!("node {}\n", quote("a\u{202b}b\u{2067}c"));
        let parsed = ::kdl::KdlDocument::parse_v2(&document).expect("valid KDL v2");
        let value = parsed.nodes()[0].entries()[0].value().as_string();
        assert_eq!(value, Some("a\u{202b}b\u{2067}c"));
    }
}
