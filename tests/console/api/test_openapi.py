"""``/openapi.json`` describes the cartable's API usefully: every operation has a summary, a
typed success answer and the 4xx it can give, and the request bodies are typed."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

OURS = ("conversations", "customers", "reports")


def test_every_operation_is_described(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as c:
        spec = c.get("/openapi.json").json()
    operations = [(path, method, op) for path, item in spec["paths"].items()
                  for method, op in item.items() if set(op.get("tags", ())) & set(OURS)]
    assert len(operations) == 30  # 26, start one, waiting, snooze, resume
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("description"), where  # the handler's docstring: why and what
        ok = next(code for code in op["responses"] if code.startswith("2"))
        content = op["responses"][ok]["content"]
        if path.endswith(".csv"):
            assert "text/csv" in content, where
        else:
            assert content["application/json"]["schema"], where
        assert {"401", "403"} <= set(op["responses"]), where
        for code in ("400", "404", "409"):
            if code in op["responses"]:
                assert op["responses"][code]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"}, where
        if method in ("patch",) or (method == "post" and "requestBody" in op):
            assert op["requestBody"]["content"]["application/json"]["schema"], where
    schemas = spec["components"]["schemas"]
    timeline = schemas["ConversationViewOut"]["properties"]["timeline"]["items"]
    assert timeline["discriminator"]["propertyName"] == "kind"
    assert schemas["ReplyOut"]["properties"]["state"] == {"$ref": "#/components/schemas/ReplyState"}
