"""Python peer of the cache-key contract, run by `tests/properties.rs`.

Reads from stdin a JSON object {"keys": [case, ...], "floats": [f, ...]}, where a case is
{"secret": hex, "context": str, "params": {name: value}, "user": str | null, "rev": int},
and writes to stdout {"keys": [[key, message], ...], "floats": [repr(f), ...]}: each key
computed the way the reference implementation does, with `hmac` and
`json.dumps(obj, sort_keys=True, separators=(",", ":"))`.
"""

import hashlib
import hmac
import json
import sys


def cache_key(case):
    obj = {"c": case["context"], "p": case["params"], "r": case["rev"]}
    if case["user"] is not None:
        obj["u"] = case["user"]
    message = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    digest = hmac.new(bytes.fromhex(case["secret"]), message.encode(), hashlib.sha256)
    return ["ctx:%s:%s" % (case["context"], digest.hexdigest()), message]


def main():
    batch = json.load(sys.stdin)
    json.dump(
        {
            "keys": [cache_key(case) for case in batch["keys"]],
            "floats": [repr(f) for f in batch["floats"]],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
