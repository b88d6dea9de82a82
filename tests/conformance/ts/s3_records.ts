// Every S3 record fsfeed renders (golden fixtures, all profiles) must be
// assignable to @types/aws-lambda's S3EventRecord under --strict, with
// `size` and `eTag` optional as AWS sends them (absent on deletes; the
// package's type says they are always there). Records of `ObjectCreated:*`
// events from ops that gave both are checked to carry them by the Rust and
// Python suites.
import type { S3EventRecord } from "aws-lambda";
import aws from "../../fixtures/s3-aws.json";
import ceph from "../../fixtures/s3-ceph.json";
import minio from "../../fixtures/s3-minio.json";

type Obj = S3EventRecord["s3"]["object"];
type AsSent = Omit<S3EventRecord, "s3"> & {
  s3: Omit<S3EventRecord["s3"], "object"> & {
    object: Omit<Obj, "size" | "eTag"> & Partial<Pick<Obj, "size" | "eTag">>;
  };
};

const events: { Records: AsSent[] }[] = [aws, ceph, minio];
const records: AsSent[] = events.flatMap((e) => e.Records);
const created: AsSent[] = records.filter((r) => r.eventName.startsWith("ObjectCreated:"));
const sizes: (number | undefined)[] = created.map((r) => r.s3.object.size);
export { records, sizes };
