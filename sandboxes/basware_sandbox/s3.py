"""The simulated S3 bucket behind Basware's pre-signed URLs: GET redirects and PDF uploads.

Like S3, it refuses a request that carries an Authorization header next to the URL's own
signature, which is how a client that forwards its bearer token through a redirect fails.
"""

from __future__ import annotations

import hmac
import secrets
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from basware_sandbox.http_common import CONTINUATION_HEADER, sandbox
from basware_sandbox.records import Export

EXPORT_LIFETIME_SECONDS = 15 * 60


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def presigned_query(signature: str, lifetime: int) -> str:
    return (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-SignedHeaders=host"
        f"&X-Amz-Expires={lifetime}&X-Amz-Signature={signature}"
    )


def check_presigned(request: Request, signature: str, expires_at: float) -> Response | None:
    """The S3 error for a request the pre-signed URL does not allow; None when it is allowed."""
    if "authorization" in request.headers:
        return _s3_error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
        )
    given = request.query_params.get("X-Amz-Signature", "")
    if not hmac.compare_digest(given, signature):
        return _s3_error(
            403, "SignatureDoesNotMatch", "The request signature we calculated does not match"
        )
    if sandbox(request).clock.now() > expires_at:
        return _s3_error(403, "AccessDenied", "Request has expired")
    return None


def park_export(request: Request, body: bytes, continuation: str | None) -> str:
    """Stores a GET answer and returns the pre-signed URL the 302 points at."""
    state = sandbox(request)
    now = state.clock.now()
    for expired in [k for k, e in state.exports.items() if e.expires_at < now]:
        del state.exports[expired]
    export_id = uuid.uuid4().hex
    signature = secrets.token_hex(32)
    state.exports[export_id] = Export(
        body=body,
        continuation=continuation,
        signature=signature,
        expires_at=now + EXPORT_LIFETIME_SECONDS,
    )
    base = str(request.base_url).rstrip("/")
    return f"{base}/_s3/exports/{export_id}?{presigned_query(signature, EXPORT_LIFETIME_SECONDS)}"


async def get_export(request: Request) -> Response:
    export = sandbox(request).exports.get(request.path_params["export_id"])
    if export is None:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    refused = check_presigned(request, export.signature, export.expires_at)
    if refused is not None:
        return refused
    headers = {CONTINUATION_HEADER: export.continuation} if export.continuation else {}
    return Response(export.body, media_type="application/json", headers=headers)


async def put_upload(request: Request) -> Response:
    state = sandbox(request)
    bum_id = request.path_params["bum_id"]
    owner = next((t for t in state.tenants.values() if bum_id in t.uploads), None)
    if owner is None:
        return _s3_error(403, "AccessDenied", "Access Denied")
    upload = owner.uploads[bum_id]
    refused = check_presigned(request, upload.signature, upload.expires_at)
    if refused is not None:
        return refused
    upload.pdf = await request.body()
    upload.received = True
    state.pipeline.submit(owner, bum_id=bum_id)
    return Response(status_code=200, headers={"ETag": f'"{uuid.uuid4().hex}"'})


ROUTES = [
    Route("/_s3/exports/{export_id}", get_export, methods=["GET"]),
    Route("/_s3/uploads/{bum_id}", put_upload, methods=["PUT"]),
]
