// Every S3 record fsfeed renders (golden fixtures, all profiles) must be
// assignable to @types/aws-lambda's S3Event / S3EventRecord under --strict.
import type { S3Event, S3EventRecord } from "aws-lambda";
import aws from "../../fixtures/s3-aws.json";
import ceph from "../../fixtures/s3-ceph.json";
import minio from "../../fixtures/s3-minio.json";

const events: S3Event[] = [aws, ceph, minio];
const records: S3EventRecord[] = events.flatMap((e) => e.Records);
const created: S3EventRecord[] = records.filter((r) => r.eventName.startsWith("ObjectCreated:"));
const sizes: number[] = created.map((r) => r.s3.object.size);
export { records, sizes };
