// The S3 REST-XML API over s3::ObjectStore: path-style (/bucket/key) and virtual-host
// (bucket.s3.<host>) addressing, S3's XML shapes and error codes, every operation
// authorized as its IAM action (s3:GetObject, …) on arn:aws:s3:::bucket[/key].
#pragma once

#include <memory>

#include "aws/service.h"
#include "services/s3/s3.h"

namespace s3 {

// `store` must outlive the service.
std::unique_ptr<aws::Service> MakeS3Service(ObjectStore& store);

}  // namespace s3
