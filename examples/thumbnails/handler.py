"""Makes a thumbnail of every image uploaded to the source bucket.

Triggered by S3 ObjectCreated notifications; writes <THUMBNAIL_BUCKET>/<key> as a PNG no
larger than THUMBNAIL_SIZE pixels on its longer side. Plain AWS code: it runs unchanged on
AWS Lambda (with Pillow in a layer) and on Stratus (Debian's python3-pil).
"""
import io
import os
import urllib.parse

import boto3
from PIL import Image

s3 = boto3.client("s3")
SIZE = int(os.environ.get("THUMBNAIL_SIZE", "128"))


def handler(event, context):
    made = []
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with Image.open(io.BytesIO(original)) as image:
            image.thumbnail((SIZE, SIZE))
            out = io.BytesIO()
            image.save(out, format="PNG")
        dest = os.environ["THUMBNAIL_BUCKET"]
        s3.put_object(Bucket=dest, Key=key, Body=out.getvalue(), ContentType="image/png",
                      Metadata={"source": f"{bucket}/{key}"})
        print(f"thumbnail of s3://{bucket}/{key} ({image.width}x{image.height}) "
              f"-> s3://{dest}/{key}")
        made.append(key)
    return {"thumbnails": made}
