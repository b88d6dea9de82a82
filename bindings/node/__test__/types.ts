// Type-checked by `tsc --strict` (npm run typecheck), never run: rendered
// records are assignable to @types/aws-lambda's types, and the declarations
// describe each format.
import type { S3EventRecord } from 'aws-lambda'
import { Ledger, eventId, positionFromEventId, watch, type Batch, type FsfeedError, type HdfsBatch, type NativeRecord, type Position, type Watch, type WatchCounters } from '..'

/** @types/aws-lambda's record with `size` and `eTag` optional, as AWS sends
 * them (absent on deletes): what fsfeed's S3 records are assignable to. */
type Obj = S3EventRecord['s3']['object']
export type S3EventRecordAsSent = Omit<S3EventRecord, 's3'> & {
  s3: Omit<S3EventRecord['s3'], 'object'> & {
    object: Omit<Obj, 'size' | 'eTag'> & Partial<Pick<Obj, 'size' | 'eTag'>>
  }
}

export async function s3Records(led: Ledger): Promise<{ Records: S3EventRecordAsSent[] }> {
  const cur = led.cursor('svc', { format: 's3', s3Profile: 'aws', filter: { prefix: 'a/' } })
  const batch = await cur.read({ max: 100, timeoutMs: 1000 })
  const records: S3EventRecordAsSent[] = batch.records
  const one: S3EventRecordAsSent = batch.records[0]
  const key: string = one.s3.object.key
  const size: number | undefined = one.s3.object.size
  const next: Position = cur.ack(batch.records[0].fsfeedEventData.eventId)
  void key
  void size
  void next
  return { Records: records }
}

export function ids(p: Position): Position {
  return positionFromEventId(eventId(p))
}

export async function nativeAndHdfs(led: Ledger): Promise<void> {
  const nat: Batch<NativeRecord> = await led.cursor(null).read()
  const seq: number = nat.records[0].seq
  const hdfs = led.cursor(null, { format: 'hdfs', start: new Date() })
  for await (const b of hdfs) {
    const first: HdfsBatch = b.records[0]
    const t: number = first.txid
    const next: Position = b.next
    void t
    void next
    break
  }
  void seq
}

export function errors(e: unknown): string {
  return (e as FsfeedError).code
}

export async function history(led: Ledger): Promise<number> {
  const ipc: Buffer = await led.history({ since: 1, until: new Date() })
  const sub = led.cursor('x').subscribe(async (b) => {
    void b.records.length
  })
  await sub.stop()
  return ipc.length
}

export async function watching(led: Ledger): Promise<number> {
  const w: Watch = await watch('/tmp/tree', led, { ignore: ['.git/**'], rescanInterval: 30 })
  await w.sync(10)
  const c: WatchCounters = w.counters()
  const root: string = w.root
  void root
  const end = await w.stop()
  return c.ops + end.diff_ops + (end.last_seq ?? 0)
}
