// The IAM Query API end to end over a real store: lifecycles and AWS-shaped errors.
#include <gtest/gtest.h>

#include "services/iam/test_util.h"

namespace iam {
namespace {

using testing::IamTest;

constexpr const char* kTrust =
    R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]})";
constexpr const char* kAllowS3 =
    R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]})";

class IamApiTest : public IamTest {};

TEST_F(IamApiTest, UserLifecycle) {
  auto r = CallIam(
      "Action=CreateUser&Version=2010-05-08&UserName=alice&Path=%2Fteam%2F"
      "&Tags.member.1.Key=env&Tags.member.1.Value=dev");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("<CreateUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"
                        "<CreateUserResult><User><Path>/team/</Path><UserName>alice</UserName>"
                        "<UserId>AIDA"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(Tag(r.body, "Arn"), "arn:aws:iam::123456789012:user/team/alice");
  EXPECT_EQ(Tag(r.body, "CreateDate"), "2026-11-23T20:00:00Z");
  EXPECT_EQ(Tag(r.body, "UserId").size(), 21u);
  EXPECT_NE(r.body.find("<Tags><member><Key>env</Key><Value>dev</Value></member></Tags>"),
            std::string::npos);

  r = CallIam("Action=CreateUser&UserName=alice");
  EXPECT_AWS_ERROR(r, 409, "EntityAlreadyExists", "User with name alice already exists.");
  // Names are case-insensitive.
  r = CallIam("Action=CreateUser&UserName=ALICE");
  EXPECT_AWS_ERROR(r, 409, "EntityAlreadyExists", "User with name ALICE already exists.");

  r = CallIam("Action=GetUser&UserName=alice");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Tag(r.body, "UserName"), "alice");
  EXPECT_EQ(Tag(r.body, "Path"), "/team/");

  r = CallIam("Action=GetUser&UserName=nobody");
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity", "The user with name nobody cannot be found.");

  CallIam("Action=CreateUser&UserName=bob");
  r = CallIam("Action=ListUsers");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("<Users><member><Path>/team/</Path><UserName>alice</UserName>"),
            std::string::npos);
  EXPECT_NE(r.body.find("<UserName>bob</UserName>"), std::string::npos);
  EXPECT_NE(r.body.find("<IsTruncated>false</IsTruncated>"), std::string::npos);
  // ListUsers omits tags.
  EXPECT_EQ(r.body.find("<Tags>"), std::string::npos);

  r = CallIam("Action=ListUsers&PathPrefix=%2Fteam%2F");
  EXPECT_EQ(r.body.find("<UserName>bob</UserName>"), std::string::npos);

  // Paging.
  r = CallIam("Action=ListUsers&MaxItems=1");
  EXPECT_NE(r.body.find("<IsTruncated>true</IsTruncated>"), std::string::npos);
  std::string marker = Tag(r.body, "Marker");
  ASSERT_FALSE(marker.empty());
  r = CallIam("Action=ListUsers&MaxItems=1&Marker=" + Enc(marker));
  EXPECT_NE(r.body.find("<UserName>bob</UserName>"), std::string::npos);
  EXPECT_NE(r.body.find("<IsTruncated>false</IsTruncated>"), std::string::npos);
  r = CallIam("Action=ListUsers&MaxItems=0");
  EXPECT_EQ(Tag(r.body, "Code"), "ValidationError");

  r = CallIam("Action=UpdateUser&UserName=bob&NewUserName=robert");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(CallIam("Action=GetUser&UserName=bob").status, 404);
  EXPECT_EQ(Tag(CallIam("Action=GetUser&UserName=robert").body, "Arn"),
            "arn:aws:iam::123456789012:user/robert");

  r = CallIam("Action=TagUser&UserName=robert&Tags.member.1.Key=a&Tags.member.1.Value=1");
  ASSERT_EQ(r.status, 200);
  r = CallIam("Action=ListUserTags&UserName=robert");
  EXPECT_NE(r.body.find("<Tags><member><Key>a</Key><Value>1</Value></member></Tags>"),
            std::string::npos);
  CallIam("Action=UntagUser&UserName=robert&TagKeys.member.1=a");
  r = CallIam("Action=ListUserTags&UserName=robert");
  EXPECT_NE(r.body.find("<Tags></Tags>"), std::string::npos) << r.body;

  EXPECT_EQ(CallIam("Action=DeleteUser&UserName=robert").status, 200);
  r = CallIam("Action=DeleteUser&UserName=robert");
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity", "The user with name robert cannot be found.");
}

TEST_F(IamApiTest, Validation) {
  auto r = CallIam("Action=CreateUser");
  EXPECT_AWS_ERROR(r, 400, "ValidationError",
                   "1 validation error detected: Value null at 'userName' failed to satisfy "
                   "constraint: Member must not be null");
  r = CallIam("Action=CreateUser&UserName=a%20b");
  EXPECT_AWS_ERROR(r, 400, "ValidationError",
                   "1 validation error detected: Value 'a b' at 'userName' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+");
  r = CallIam("Action=CreateUser&UserName=x&Path=nope");
  EXPECT_EQ(Tag(r.body, "Code"), "ValidationError");
  r = CallIam("Action=CreateUser&UserName=" + std::string(65, 'a'));
  EXPECT_EQ(Tag(r.body, "Code"), "ValidationError");
  r = CallIam("Action=NoSuchThing");
  EXPECT_AWS_ERROR(r, 400, "InvalidAction",
                   "Could not find operation NoSuchThing for version 2010-05-08");
}

TEST_F(IamApiTest, AccessKeys) {
  CallIam("Action=CreateUser&UserName=alice");
  auto r = CallIam("Action=CreateAccessKey&UserName=alice");
  ASSERT_EQ(r.status, 200) << r.body;
  std::string id = Tag(r.body, "AccessKeyId");
  EXPECT_EQ(id.size(), 20u);
  EXPECT_EQ(id.rfind("AKIA", 0), 0u);
  EXPECT_EQ(Tag(r.body, "SecretAccessKey").size(), 40u);
  EXPECT_EQ(Tag(r.body, "Status"), "Active");
  EXPECT_EQ(Tag(r.body, "UserName"), "alice");

  ASSERT_EQ(CallIam("Action=CreateAccessKey&UserName=alice").status, 200);
  r = CallIam("Action=CreateAccessKey&UserName=alice");
  EXPECT_AWS_ERROR(r, 409, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2");

  r = CallIam("Action=DeleteUser&UserName=alice");
  EXPECT_AWS_ERROR(r, 409, "DeleteConflict",
                   "Cannot delete entity, must delete access keys first.");

  r = CallIam("Action=UpdateAccessKey&UserName=alice&AccessKeyId=" + id + "&Status=Inactive");
  ASSERT_EQ(r.status, 200) << r.body;
  r = CallIam("Action=ListAccessKeys&UserName=alice");
  EXPECT_NE(r.body.find("<AccessKeyId>" + id + "</AccessKeyId><Status>Inactive</Status>"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(r.body.find("SecretAccessKey"), std::string::npos);
  r = CallIam("Action=UpdateAccessKey&UserName=alice&AccessKeyId=" + id + "&Status=Maybe");
  EXPECT_EQ(Tag(r.body, "Code"), "ValidationError");

  r = CallIam("Action=DeleteAccessKey&UserName=alice&AccessKeyId=AKIANOPE0000000000000");
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity",
                   "The Access Key with id AKIANOPE0000000000000 cannot be found.");
  r = CallIam("Action=ListAccessKeys&UserName=alice");
  for (size_t pos = 0; (pos = r.body.find("<AccessKeyId>", pos)) != std::string::npos; ++pos) {
    std::string k = r.body.substr(pos + 13, 20);
    EXPECT_EQ(CallIam("Action=DeleteAccessKey&UserName=alice&AccessKeyId=" + k).status, 200);
  }
  EXPECT_EQ(CallIam("Action=DeleteUser&UserName=alice").status, 200);

  // Root has no IAM user to default to.
  r = CallIam("Action=CreateAccessKey");
  EXPECT_AWS_ERROR(r, 400, "ValidationError",
                   "Must specify userName when calling with non-User credentials");
}

TEST_F(IamApiTest, RoleLifecycle) {
  auto r = CallIam("Action=CreateRole&RoleName=fn-role&Path=%2Fsvc%2F&AssumeRolePolicyDocument=" +
                   Enc(kTrust) + "&Description=runs%20functions");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Tag(r.body, "Arn"), "arn:aws:iam::123456789012:role/svc/fn-role");
  EXPECT_EQ(Tag(r.body, "RoleId").rfind("AROA", 0), 0u);
  // Documents come back URL-encoded, as IAM sends them.
  EXPECT_EQ(Tag(r.body, "AssumeRolePolicyDocument"), Enc(kTrust));
  // CreateRole answers without MaxSessionDuration / RoleLastUsed; GetRole has both.
  EXPECT_EQ(r.body.find("MaxSessionDuration"), std::string::npos);
  r = CallIam("Action=GetRole&RoleName=fn-role");
  EXPECT_EQ(Tag(r.body, "MaxSessionDuration"), "3600");
  EXPECT_NE(r.body.find("<RoleLastUsed></RoleLastUsed>"), std::string::npos);
  EXPECT_EQ(Tag(r.body, "Description"), "runs functions");

  r = CallIam("Action=CreateRole&RoleName=fn-role&AssumeRolePolicyDocument=" + Enc(kTrust));
  EXPECT_AWS_ERROR(r, 409, "EntityAlreadyExists", "Role with name fn-role already exists.");
  r = CallIam("Action=CreateRole&RoleName=bad&AssumeRolePolicyDocument=%7Bnot%20json");
  EXPECT_AWS_ERROR(r, 400, "MalformedPolicyDocument", "This policy contains invalid Json");
  r = CallIam("Action=CreateRole&RoleName=bad&AssumeRolePolicyDocument=" + Enc(kAllowS3));
  EXPECT_EQ(Tag(r.body, "Code"), "MalformedPolicyDocument");
  r = CallIam("Action=CreateRole&RoleName=bad&MaxSessionDuration=60&AssumeRolePolicyDocument=" +
              Enc(kTrust));
  EXPECT_EQ(Tag(r.body, "Code"), "ValidationError");

  r = CallIam("Action=ListRoles");
  EXPECT_NE(r.body.find("<Roles><member><Path>/svc/</Path><RoleName>fn-role</RoleName>"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(r.body.find("RoleLastUsed"), std::string::npos);

  std::string trust2 =
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]})";
  r = CallIam("Action=UpdateAssumeRolePolicy&RoleName=fn-role&PolicyDocument=" + Enc(trust2));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Tag(CallIam("Action=GetRole&RoleName=fn-role").body, "AssumeRolePolicyDocument"),
            Enc(trust2));

  r = CallIam("Action=PutRolePolicy&RoleName=fn-role&PolicyName=s3&PolicyDocument=" +
              Enc(kAllowS3));
  ASSERT_EQ(r.status, 200) << r.body;
  r = CallIam("Action=GetRolePolicy&RoleName=fn-role&PolicyName=s3");
  EXPECT_EQ(Tag(r.body, "RoleName"), "fn-role");
  EXPECT_EQ(Tag(r.body, "PolicyDocument"), Enc(kAllowS3));
  r = CallIam("Action=ListRolePolicies&RoleName=fn-role");
  EXPECT_NE(r.body.find("<PolicyNames><member>s3</member></PolicyNames>"), std::string::npos);
  r = CallIam("Action=DeleteRole&RoleName=fn-role");
  EXPECT_AWS_ERROR(r, 409, "DeleteConflict", "Cannot delete entity, must delete policies first.");
  r = CallIam("Action=GetRolePolicy&RoleName=fn-role&PolicyName=nope");
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity", "The role policy with name nope cannot be found.");
  r = CallIam("Action=ListInstanceProfilesForRole&RoleName=fn-role");
  EXPECT_NE(r.body.find("<InstanceProfiles></InstanceProfiles>"), std::string::npos) << r.body;
  r = CallIam("Action=UpdateRoleDescription&RoleName=fn-role&Description=new");
  EXPECT_EQ(Tag(r.body, "Description"), "new");
  EXPECT_EQ(CallIam("Action=DeleteRolePolicy&RoleName=fn-role&PolicyName=s3").status, 200);
  EXPECT_EQ(CallIam("Action=DeleteRole&RoleName=fn-role").status, 200);
  r = CallIam("Action=GetRole&RoleName=fn-role");
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity", "The role with name fn-role cannot be found.");
}

TEST_F(IamApiTest, ManagedPolicies) {
  auto r = CallIam("Action=CreatePolicy&PolicyName=s3-all&PolicyDocument=" + Enc(kAllowS3));
  ASSERT_EQ(r.status, 200) << r.body;
  std::string arn = Tag(r.body, "Arn");
  EXPECT_EQ(arn, "arn:aws:iam::123456789012:policy/s3-all");
  EXPECT_EQ(Tag(r.body, "DefaultVersionId"), "v1");
  EXPECT_EQ(Tag(r.body, "AttachmentCount"), "0");
  EXPECT_EQ(Tag(r.body, "IsAttachable"), "true");
  EXPECT_EQ(Tag(r.body, "PolicyId").rfind("ANPA", 0), 0u);

  r = CallIam("Action=CreatePolicy&PolicyName=s3-all&PolicyDocument=" + Enc(kAllowS3));
  EXPECT_AWS_ERROR(r, 409, "EntityAlreadyExists",
                   "A policy called s3-all already exists. Duplicate names are not allowed.");
  r = CallIam("Action=CreatePolicy&PolicyName=x&PolicyDocument=" + Enc(kTrust));
  EXPECT_EQ(Tag(r.body, "Code"), "MalformedPolicyDocument");

  CallIam("Action=CreateUser&UserName=alice");
  r = CallIam("Action=AttachUserPolicy&UserName=alice&PolicyArn=s3-all");
  EXPECT_AWS_ERROR(r, 400, "ValidationError", "Invalid ARN:  Could not be parsed!");
  r = CallIam("Action=AttachUserPolicy&UserName=alice&PolicyArn=" + Enc(arn + "123"));
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity",
                   "Policy " + arn + "123 does not exist or is not attachable.");
  r = CallIam("Action=AttachUserPolicy&UserName=alice&PolicyArn=" + Enc(arn));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(CallIam("Action=AttachUserPolicy&UserName=alice&PolicyArn=" + Enc(arn)).status, 200);
  r = CallIam("Action=AttachUserPolicy&UserName=alice&PolicyArn=" +
              Enc("arn:aws:iam::aws:policy/ReadOnlyAccess"));
  ASSERT_EQ(r.status, 200) << r.body;
  r = CallIam("Action=ListAttachedUserPolicies&UserName=alice");
  EXPECT_NE(r.body.find("<AttachedPolicies><member><PolicyName>s3-all</PolicyName><PolicyArn>" +
                        arn + "</PolicyArn></member>"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("<PolicyName>ReadOnlyAccess</PolicyName>"), std::string::npos);
  EXPECT_EQ(Tag(CallIam("Action=GetPolicy&PolicyArn=" + Enc(arn)).body, "AttachmentCount"), "1");

  r = CallIam("Action=ListEntitiesForPolicy&PolicyArn=" + Enc(arn));
  EXPECT_NE(r.body.find("<PolicyUsers><member><UserName>alice</UserName>"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("<PolicyRoles></PolicyRoles>"), std::string::npos);
  r = CallIam("Action=DeletePolicy&PolicyArn=" + Enc(arn));
  EXPECT_AWS_ERROR(r, 409, "DeleteConflict", "Cannot delete a policy attached to entities.");
  r = CallIam("Action=DeleteUser&UserName=alice");
  EXPECT_AWS_ERROR(r, 409, "DeleteConflict",
                   "Cannot delete entity, must detach all policies first.");

  // Versions.
  std::string v2doc =
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]})";
  r = CallIam("Action=CreatePolicyVersion&PolicyArn=" + Enc(arn) +
              "&SetAsDefault=true&PolicyDocument=" + Enc(v2doc));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Tag(r.body, "VersionId"), "v2");
  EXPECT_EQ(Tag(r.body, "IsDefaultVersion"), "true");
  r = CallIam("Action=GetPolicyVersion&PolicyArn=" + Enc(arn) + "&VersionId=v1");
  EXPECT_EQ(Tag(r.body, "Document"), Enc(kAllowS3));
  EXPECT_EQ(Tag(r.body, "IsDefaultVersion"), "false");
  r = CallIam("Action=ListPolicyVersions&PolicyArn=" + Enc(arn));
  EXPECT_NE(r.body.find("<Versions><member><VersionId>v2</VersionId>"), std::string::npos)
      << r.body;
  r = CallIam("Action=DeletePolicyVersion&PolicyArn=" + Enc(arn) + "&VersionId=v2");
  EXPECT_AWS_ERROR(r, 409, "DeleteConflict", "Cannot delete the default version of a policy.");
  EXPECT_EQ(CallIam("Action=DeletePolicyVersion&PolicyArn=" + Enc(arn) + "&VersionId=v1").status,
            200);
  r = CallIam("Action=GetPolicyVersion&PolicyArn=" + Enc(arn) + "&VersionId=v1");
  EXPECT_EQ(r.status, 404);

  r = CallIam("Action=ListPolicies&Scope=Local");
  EXPECT_NE(r.body.find("<PolicyName>s3-all</PolicyName>"), std::string::npos);
  EXPECT_EQ(r.body.find("ReadOnlyAccess"), std::string::npos);
  r = CallIam("Action=ListPolicies&Scope=AWS&OnlyAttached=true");
  EXPECT_NE(r.body.find("<PolicyName>ReadOnlyAccess</PolicyName>"), std::string::npos);
  EXPECT_EQ(r.body.find("AdministratorAccess"), std::string::npos);

  r = CallIam("Action=DetachUserPolicy&UserName=alice&PolicyArn=" + Enc(arn));
  ASSERT_EQ(r.status, 200);
  r = CallIam("Action=DetachUserPolicy&UserName=alice&PolicyArn=" + Enc(arn));
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity", "Policy " + arn + " was not found.");
  EXPECT_EQ(Tag(CallIam("Action=GetPolicy&PolicyArn=" + Enc(arn)).body, "AttachmentCount"), "0");
  EXPECT_EQ(CallIam("Action=DeletePolicy&PolicyArn=" + Enc(arn)).status, 200);
  r = CallIam("Action=DeletePolicy&PolicyArn=" + Enc(arn));
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity", "Policy " + arn + " was not found.");
  r = CallIam("Action=GetPolicy&PolicyArn=" +
              Enc("arn:aws:iam::123456789012:policy/non-existent-policy"));
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity",
                   "Policy arn:aws:iam::123456789012:policy/non-existent-policy was not found.");
}

TEST_F(IamApiTest, UserInlinePolicies) {
  CallIam("Action=CreateUser&UserName=alice");
  auto r =
      CallIam("Action=PutUserPolicy&UserName=alice&PolicyName=p1&PolicyDocument=" + Enc(kAllowS3));
  ASSERT_EQ(r.status, 200) << r.body;
  r = CallIam("Action=PutUserPolicy&UserName=alice&PolicyName=p1&PolicyDocument=%5B");
  EXPECT_AWS_ERROR(r, 400, "MalformedPolicyDocument", "This policy contains invalid Json");
  r = CallIam("Action=GetUserPolicy&UserName=alice&PolicyName=p1");
  EXPECT_EQ(Tag(r.body, "UserName"), "alice");
  EXPECT_EQ(Tag(r.body, "PolicyName"), "p1");
  EXPECT_EQ(Tag(r.body, "PolicyDocument"), Enc(kAllowS3));
  r = CallIam("Action=DeleteUser&UserName=alice");
  EXPECT_AWS_ERROR(r, 409, "DeleteConflict", "Cannot delete entity, must delete policies first.");
  r = CallIam("Action=GetUserPolicy&UserName=alice&PolicyName=p2");
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity", "The user policy with name p2 cannot be found.");
  r = CallIam("Action=PutUserPolicy&UserName=ghost&PolicyName=p1&PolicyDocument=" + Enc(kAllowS3));
  EXPECT_AWS_ERROR(r, 404, "NoSuchEntity", "The user with name ghost cannot be found.");
  EXPECT_EQ(CallIam("Action=DeleteUserPolicy&UserName=alice&PolicyName=p1").status, 200);
  r = CallIam("Action=ListUserPolicies&UserName=alice");
  EXPECT_NE(r.body.find("<PolicyNames></PolicyNames>"), std::string::npos) << r.body;
  EXPECT_EQ(CallIam("Action=DeleteUser&UserName=alice").status, 200);
}

TEST_F(IamApiTest, GetUserWithoutNameAnswersForTheCaller) {
  auto r = CallIam("Action=GetUser");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Tag(r.body, "UserId"), "123456789012");
  EXPECT_EQ(Tag(r.body, "Arn"), "arn:aws:iam::123456789012:root");
  EXPECT_EQ(r.body.find("<UserName>"), std::string::npos);

  CallIam("Action=CreateUser&UserName=alice");
  CallIam(
      "Action=PutUserPolicy&UserName=alice&PolicyName=self&PolicyDocument=" +
      Enc(R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::123456789012:user/${aws:username}"}]})"));
  auto alice = iam_->GetUser("alice");
  ASSERT_TRUE(alice.ok());
  auth::Principal p;
  p.type = auth::PrincipalType::kUser;
  p.account_id = testing::kAccount;
  p.arn = alice->arn;
  p.user_id = alice->id;
  p.name = "alice";
  r = Post(*service_, "Action=GetUser", MakeCall(p));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Tag(r.body, "UserName"), "alice");
  // Policy variables: alice may read herself but nobody else.
  CallIam("Action=CreateUser&UserName=bob");
  r = Post(*service_, "Action=GetUser&UserName=bob", MakeCall(p));
  EXPECT_AWS_ERROR(r, 403, "AccessDenied",
                   "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: "
                   "iam:GetUser on resource: arn:aws:iam::123456789012:user/bob because no "
                   "identity-based policy allows the iam:GetUser action");
}

}  // namespace
}  // namespace iam
