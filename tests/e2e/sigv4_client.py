"""A minimal, independent SigV4 signer for negative tests (skewed clocks, tampering),
where the real SDKs give no control over the signing time."""
import datetime
import hashlib
import hmac
import urllib.parse
import urllib.request


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_query_request(endpoint, access_key, secret, body, service="sts",
                         region="us-east-1", when=None, token=None, tamper_body=None):
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    host = urllib.parse.urlparse(endpoint).netloc
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8",
               "host": host, "x-amz-date": amz_date}
    if token:
        headers["x-amz-security-token"] = token
    signed = ";".join(sorted(headers))
    canonical_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    payload_hash = hashlib.sha256(body.encode()).hexdigest()
    creq = "\n".join(["POST", "/", "", canonical_headers, signed, payload_hash])
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = _sign(("AWS4" + secret).encode(), date)
    k = _sign(k, region)
    k = _sign(k, service)
    k = _sign(k, "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                                f"SignedHeaders={signed}, Signature={sig}")
    data = (tamper_body if tamper_body is not None else body).encode()
    req = urllib.request.Request(endpoint + "/", data=data, method="POST",
                                 headers={k: v for k, v in headers.items() if k != "host"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def xml_code(body):
    start = body.find("<Code>")
    if start < 0:
        return None
    return body[start + 6:body.find("</Code>")]
