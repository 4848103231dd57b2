"""Raw OCI Distribution API helpers for the registry end-to-end tests (http.client, so that
exact statuses, headers and partial bodies can be checked)."""
import base64
import hashlib
import http.client
import json


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def ecr_token(server):
    """The password half of GetAuthorizationToken's base64("AWS:<token>")."""
    data = server.client("ecr").get_authorization_token()["authorizationData"][0]
    user, token = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    assert user == "AWS"
    return token


class Registry:
    def __init__(self, server, token=None):
        self.port = server.port
        self.token = token

    def headers(self, extra=None):
        h = {}
        if self.token is not None:
            h["Authorization"] = "Basic " + base64.b64encode(
                ("AWS:" + self.token).encode()).decode()
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request(method, path, body=body, headers=self.headers(headers))
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def push_blob(self, repo, data):
        s, h, b = self.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest(data)}", data,
                               {"Content-Type": "application/octet-stream"})
        assert s == 201, (s, b)
        return digest(data)

    def push_image(self, repo, tag, layers, config=None):
        """Pushes blobs and an OCI image manifest; returns (manifest digest, manifest bytes)."""
        config = config or json.dumps({"architecture": "amd64", "os": "linux",
                                       "n": len(layers), "id": tag}).encode()
        self.push_blob(repo, config)
        descs = []
        for layer in layers:
            self.push_blob(repo, layer)
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                          "digest": digest(layer), "size": len(layer)})
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": digest(config), "size": len(config)},
            "layers": descs}).encode()
        s, h, b = self.request("PUT", f"/v2/{repo}/manifests/{tag}", manifest,
                               {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert s == 201, (s, b)
        return h["docker-content-digest"], manifest


def error_code(body):
    return json.loads(body)["errors"][0]["code"]
