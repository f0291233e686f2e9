'use strict';
// check-manifests.js passes the rendered overlays and catches manifests that drift from the
// binaries or from each other. Needs MXPORT_RENDERED_DIR (overlays rendered by
// tools/deploy-check.sh) and MXPORT_BIN_DIR (the built binaries); skipped without them.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { checkOverlay, readHelps } = require('../check-manifests');
const { parseDocuments } = require('../lib/k8s-schema');

const rendered = process.env.MXPORT_RENDERED_DIR;
const binDir = process.env.MXPORT_BIN_DIR;
const skip = !rendered || !binDir ? 'set MXPORT_RENDERED_DIR and MXPORT_BIN_DIR (tools/deploy-check.sh does)' : false;
const helps = skip ? null : readHelps(binDir);
const load = (name) => parseDocuments(fs.readFileSync(path.join(rendered, `${name}.yaml`), 'utf8'), name);
const find = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const worker = (objects) => find(objects, 'Job', 'mxport-workers').spec.template.spec.containers[0];
const coordinator = (objects) => find(objects, 'Deployment', 'mxport-coordinator').spec.template.spec;
// Errors after `mutate` changed the overlay.
function errorsAfter(name, mutate) {
  const objects = load(name);
  mutate(objects);
  return checkOverlay(name, objects, helps).errors.join('\n');
}

test('every rendered overlay passes', { skip }, () => {
  for (const name of ['gpu', 'cpu', 'jobset']) {
    assert.deepStrictEqual(checkOverlay(name, load(name), helps).errors, [], name);
  }
});

test('a flag the binary lacks is caught', { skip }, () => {
  assert.match(errorsAfter('cpu', (o) => worker(o).args.push('--no-such-flag=1')),
    /container worker: --no-such-flag is not a flag of mxport-worker/);
  assert.match(errorsAfter('cpu', (o) => coordinator(o).containers[0].args.push('--grpc-port=1')),
    /--grpc-port is not a flag of mxport-coordinator/);
});

test('probes and Service must match --grpc-address and --rest-port', { skip }, () => {
  assert.match(errorsAfter('gpu', (o) => { coordinator(o).containers[0].livenessProbe.grpc.port = 8080; }),
    /livenessProbe must be a grpc probe on the gRPC port 50051/);
  assert.match(errorsAfter('gpu', (o) => {
    const args = coordinator(o).containers[0].args;
    args[args.indexOf('--rest-port=8080')] = '--rest-port=9090';
  }), /no containerPort for --rest-port 9090/);
  assert.match(errorsAfter('gpu', (o) => { coordinator(o).terminationGracePeriodSeconds = 30; }),
    /terminationGracePeriodSeconds \(30\) must exceed --shutdown-grace/);
});

test('workers take their index from JOB_COMPLETION_INDEX of an Indexed Job', { skip }, () => {
  const errors = errorsAfter('cpu', (o) => {
    const w = worker(o);
    w.env = w.env.filter((e) => e.name !== 'JOB_COMPLETION_INDEX');
    w.args.push('--index=0');
    delete find(o, 'Job', 'mxport-workers').spec.completionMode;
  });
  assert.match(errors, /--index must not be set/);
  assert.match(errors, /env JOB_COMPLETION_INDEX must come from/);
  assert.match(errors, /completionMode: Indexed/);
});

test('worker count, job id and coordinator address must agree with the job spec', { skip }, () => {
  assert.match(errorsAfter('cpu', (o) => { find(o, 'Job', 'mxport-workers').spec.completions = 8; }),
    /completions = parallelism = job spec workers_expected \(4\)/);
  assert.match(errorsAfter('cpu', (o) => {
    worker(o).args = worker(o).args.map((a) => a.replace(/^--job=.*/, '--job=other'));
  }), /--job other differs from the job spec's job_id/);
  assert.match(errorsAfter('cpu', (o) => {
    worker(o).args = worker(o).args.map((a) => a.replace(/^--coordinator=.*/, '--coordinator=mxport:50051'));
  }), /--coordinator mxport:50051 must be the coordinator Service's gRPC port/);
});

test('the CPU overlay runs TCP without GPUs, the GPU overlays NCCL with GPUs', { skip }, () => {
  assert.match(errorsAfter('cpu', (o) => { worker(o).resources.limits['nvidia.com/gpu'] = '1'; }),
    /--transport=tcp runs without GPUs/);
  assert.match(errorsAfter('gpu', (o) => { delete worker(o).resources.limits['nvidia.com/gpu']; }),
    /--transport=nccl needs an nvidia.com\/gpu limit/);
  assert.match(errorsAfter('gpu', (o) => {
    worker(o).args = worker(o).args.map((a) => a.replace('--transport=nccl', '--transport=tcp'));
  }), /overlay gpu must use --transport=nccl/);
});

test('JobSet workers need the network subdomain and one replica', { skip }, () => {
  const errors = errorsAfter('jobset', (o) => {
    const js = find(o, 'JobSet', 'mxport');
    js.spec.network.subdomain = 'elsewhere';
    js.spec.replicatedJobs[0].replicas = 2;
  });
  assert.match(errors, /network.subdomain must equal the pods' subdomain/);
  assert.match(errors, /replicas 1 and completions/);
});
