"""The ECR API with the aws CLI and boto3: repositories, images, tokens, tag mutability,
lifecycle policies applied by the controller, repository policies, and ECR's error codes."""
import base64
import json
import time
import unittest

from harness import StratusTestCase
from registry_util import Registry, digest, ecr_token


class EcrTest(StratusTestCase):
    config_yaml = "ecr_lifecycle_interval_seconds: 1\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ecr = cls.server.client("ecr")
        cls.reg = Registry(cls.server, ecr_token(cls.server))

    def test_repository_lifecycle_with_the_cli(self):
        _, out, _ = self.server.aws("ecr", "create-repository", "--repository-name", "cli/repo")
        repo = out["repository"]
        self.assertEqual(repo["repositoryUri"], f"127.0.0.1:{self.server.port}/cli/repo")
        self.assertEqual(repo["repositoryArn"],
                         "arn:aws:ecr:us-east-1:000000000000:repository/cli/repo")
        code, _, err = self.server.aws("ecr", "create-repository", "--repository-name",
                                       "cli/repo", check=False)
        self.assertNotEqual(code, 0)
        self.assertIn("RepositoryAlreadyExistsException", err)
        _, out, _ = self.server.aws("ecr", "describe-repositories", "--repository-names", "cli/repo")
        self.assertEqual(out["repositories"][0]["imageTagMutability"], "MUTABLE")
        d, m = self.reg.push_image("cli/repo", "v1", [b"cli layer"])
        _, out, _ = self.server.aws("ecr", "list-images", "--repository-name", "cli/repo")
        self.assertEqual(out["imageIds"], [{"imageDigest": d, "imageTag": "v1"}])
        _, out, _ = self.server.aws("ecr", "batch-get-image", "--repository-name", "cli/repo",
                                    "--image-ids", "imageTag=v1")
        self.assertEqual(out["images"][0]["imageManifest"], m.decode())
        # put-image: a second tag on the same manifest.
        _, out, _ = self.server.aws("ecr", "put-image", "--repository-name", "cli/repo",
                                    "--image-tag", "v1-alias", "--image-manifest", m.decode())
        self.assertEqual(out["image"]["imageId"]["imageDigest"], d)
        code, _, err = self.server.aws("ecr", "put-image", "--repository-name", "cli/repo",
                                       "--image-tag", "v1", "--image-manifest", m.decode(),
                                       check=False)
        self.assertIn("ImageAlreadyExistsException", err)
        code, _, err = self.server.aws("ecr", "delete-repository", "--repository-name",
                                       "cli/repo", check=False)
        self.assertIn("RepositoryNotEmptyException", err)
        _, out, _ = self.server.aws("ecr", "batch-delete-image", "--repository-name", "cli/repo",
                                    "--image-ids", "imageTag=v1")
        self.assertEqual(out["imageIds"], [{"imageDigest": d, "imageTag": "v1"}])
        _, out, _ = self.server.aws("ecr", "describe-images", "--repository-name", "cli/repo")
        self.assertEqual(out["imageDetails"][0]["imageTags"], ["v1-alias"])
        self.server.aws("ecr", "delete-repository", "--repository-name", "cli/repo", "--force")
        code, _, err = self.server.aws("ecr", "describe-repositories", "--repository-names",
                                       "cli/repo", check=False)
        self.assertIn("RepositoryNotFoundException", err)

    def test_get_login_password_is_the_token(self):
        _, password, _ = self.server.aws("ecr", "get-login-password")
        r = Registry(self.server, password.strip())
        s, _, _ = r.request("GET", "/v2/")
        self.assertEqual(s, 200)
        data = self.ecr.get_authorization_token()["authorizationData"][0]
        self.assertTrue(base64.b64decode(data["authorizationToken"]).startswith(b"AWS:"))
        left = data["expiresAt"].timestamp() - time.time()
        self.assertTrue(11.9 * 3600 < left <= 12 * 3600, left)

    def test_immutable_tags_refuse_overwrite(self):
        self.ecr.create_repository(repositoryName="immutable", imageTagMutability="IMMUTABLE")
        self.reg.push_image("immutable", "v1", [b"first"])
        _, m2 = self.reg.push_image("immutable", "v2", [b"second"])
        self.assertClientError(
            lambda: self.ecr.put_image(repositoryName="immutable", imageTag="v1",
                                       imageManifest=m2.decode()),
            "ImageTagAlreadyExistsException")
        s, _, b = self.reg.request("PUT", "/v2/immutable/manifests/v1", m2,
                                   {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        self.assertEqual((s, json.loads(b)["errors"][0]["code"]), (400, "TAG_INVALID"))
        self.ecr.put_image_tag_mutability(repositoryName="immutable", imageTagMutability="MUTABLE")
        self.ecr.put_image(repositoryName="immutable", imageTag="v1", imageManifest=m2.decode())

    def test_lifecycle_policy_expires_images(self):
        self.ecr.create_repository(repositoryName="lifecycle")
        self.assertClientError(lambda: self.ecr.get_lifecycle_policy(repositoryName="lifecycle"),
                               "LifecyclePolicyNotFoundException")
        for i in range(4):
            self.reg.push_image("lifecycle", f"build-{i}", [f"layer {i}".encode()])
            time.sleep(0.01)
        self.reg.push_image("lifecycle", "keep-me", [b"other"])
        policy = {"rules": [{"rulePriority": 1, "description": "keep two builds",
                             "selection": {"tagStatus": "tagged", "tagPrefixList": ["build-"],
                                           "countType": "imageCountMoreThan", "countNumber": 2},
                             "action": {"type": "expire"}}]}
        self.assertClientError(
            lambda: self.ecr.put_lifecycle_policy(repositoryName="lifecycle",
                                                  lifecyclePolicyText=json.dumps({"rules": [{
                                                      "rulePriority": 1, "selection": {
                                                          "tagStatus": "tagged",
                                                          "countType": "imageCountMoreThan",
                                                          "countNumber": 1},
                                                      "action": {"type": "expire"}}]})),
            "InvalidParameterException")
        self.ecr.put_lifecycle_policy(repositoryName="lifecycle",
                                      lifecyclePolicyText=json.dumps(policy))
        deadline = time.time() + 10
        tags = None
        while time.time() < deadline:
            ids = self.ecr.list_images(repositoryName="lifecycle")["imageIds"]
            tags = sorted(i["imageTag"] for i in ids)
            if len(tags) == 3:
                break
            time.sleep(0.2)
        self.assertEqual(tags, ["build-2", "build-3", "keep-me"])
        got = self.ecr.get_lifecycle_policy(repositoryName="lifecycle")
        self.assertIn("lastEvaluatedAt", got)
        self.ecr.delete_lifecycle_policy(repositoryName="lifecycle")

    def test_errors(self):
        self.assertClientError(lambda: self.ecr.describe_repositories(repositoryNames=["nope"]),
                               "RepositoryNotFoundException", 400)
        self.assertClientError(lambda: self.ecr.list_images(repositoryName="nope"),
                               "RepositoryNotFoundException")
        self.assertClientError(lambda: self.ecr.create_repository(repositoryName="Bad Name!"),
                               "InvalidParameterException")
        self.ecr.create_repository(repositoryName="errors")
        self.assertClientError(
            lambda: self.ecr.describe_images(repositoryName="errors",
                                             imageIds=[{"imageTag": "missing"}]),
            "ImageNotFoundException")
        out = self.ecr.batch_get_image(repositoryName="errors", imageIds=[{"imageTag": "missing"}])
        self.assertEqual(out["failures"][0]["failureCode"], "ImageNotFound")
        self.assertClientError(
            lambda: self.ecr.put_image(repositoryName="errors", imageTag="x",
                                       imageManifest=json.dumps({
                                           "schemaVersion": 2,
                                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                           "config": {"mediaType": "a/b", "digest": digest(b"no"),
                                                      "size": 2}, "layers": []})),
            "LayersNotFoundException")
        self.assertClientError(lambda: self.ecr.get_repository_policy(repositoryName="errors"),
                               "RepositoryPolicyNotFoundException")
        out = self.ecr.batch_check_layer_availability(repositoryName="errors",
                                                      layerDigests=[digest(b"no")])
        self.assertEqual(out["failures"][0]["failureCode"], "MissingLayerDigest")

    def test_layer_upload_api(self):
        self.ecr.create_repository(repositoryName="layers")
        data = b"layer via the ECR API " * 1000
        up = self.ecr.initiate_layer_upload(repositoryName="layers")["uploadId"]
        self.ecr.upload_layer_part(repositoryName="layers", uploadId=up, partFirstByte=0,
                                   partLastByte=9999, layerPartBlob=data[:10000])
        self.assertClientError(
            lambda: self.ecr.upload_layer_part(repositoryName="layers", uploadId=up,
                                               partFirstByte=5, partLastByte=9,
                                               layerPartBlob=data[:5]),
            "InvalidLayerPartException")
        out = self.ecr.upload_layer_part(repositoryName="layers", uploadId=up,
                                         partFirstByte=10000, partLastByte=len(data) - 1,
                                         layerPartBlob=data[10000:])
        self.assertEqual(out["lastByteReceived"], len(data) - 1)
        out = self.ecr.complete_layer_upload(repositoryName="layers", uploadId=up,
                                             layerDigests=[digest(data)])
        self.assertEqual(out["layerDigest"], digest(data))
        avail = self.ecr.batch_check_layer_availability(repositoryName="layers",
                                                        layerDigests=[digest(data)])
        self.assertEqual(avail["layers"][0]["layerAvailability"], "AVAILABLE")
        url = self.ecr.get_download_url_for_layer(repositoryName="layers",
                                                  layerDigest=digest(data))["downloadUrl"]
        s, _, body = self.reg.request("GET", url.split(str(self.server.port), 1)[1])
        self.assertEqual((s, body), (200, data))
        # A wrong digest keeps nothing; the session is gone.
        up = self.ecr.initiate_layer_upload(repositoryName="layers")["uploadId"]
        self.ecr.upload_layer_part(repositoryName="layers", uploadId=up, partFirstByte=0,
                                   partLastByte=2, layerPartBlob=b"abc")
        self.assertClientError(
            lambda: self.ecr.complete_layer_upload(repositoryName="layers", uploadId=up,
                                                   layerDigests=[digest(b"xyz")]),
            "InvalidLayerException")
        self.assertClientError(
            lambda: self.ecr.complete_layer_upload(repositoryName="layers", uploadId=up,
                                                   layerDigests=[digest(b"abc")]),
            "UploadNotFoundException")
        self.assertClientError(
            lambda: self.ecr.get_download_url_for_layer(repositoryName="layers",
                                                        layerDigest=digest(b"abc")),
            "LayersNotFoundException")

    def test_pagination(self):
        for i in range(3):
            self.ecr.create_repository(repositoryName=f"page/r{i}")
        first = self.ecr.describe_repositories(maxResults=2)
        self.assertEqual(len(first["repositories"]), 2)
        rest = self.ecr.describe_repositories(maxResults=1000, nextToken=first["nextToken"])
        names = [r["repositoryName"] for r in first["repositories"] + rest["repositories"]]
        self.assertEqual(len(names), len(set(names)))
        for i in range(3):
            self.assertIn(f"page/r{i}", names)


if __name__ == "__main__":
    unittest.main()
