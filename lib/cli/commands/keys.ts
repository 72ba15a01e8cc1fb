import type { z } from 'zod';
import { ApiKeyListSchema, CreatedApiKeySchema } from '../../api/schemas.ts';
import { parseCommandArgs, UsageError } from '../args.ts';
import { ApiError } from '../client.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import {
  apiClientFor,
  type CliContext,
  datasetArg,
  formatTable,
  processContext,
  reportRemoteError,
} from '../remote.ts';
import { resolveTarget, TARGET_HELP, TARGET_OPTIONS, targetFlags, timeoutMsFlag } from '../target.ts';

const HELP = `tlearn keys create --role predict|admin [--dataset D]… [--name NAME]
tlearn keys list [--json]
tlearn keys revoke ID

Manages scoped API keys through the API (POST/GET/DELETE /keys), with an admin key (--api-key or
TLEARN_API_KEY). A predict key may POST predictions and GET the model of its datasets, and list
only those datasets; an admin key may do everything. On AWS the keys are API Gateway API keys in
the stack's usage plan (throttle and quota apply); locally they live in .tlearn/api-keys.json.

create prints the new key's id and scope on stderr and its value alone on the last line of
stdout (shown once; store it now):
  KEY=$(tlearn keys create --role predict --dataset pets | tail -n 1)

options:
  --role R               predict or admin (create)
  --dataset D            a dataset of a predict key; repeat for more (create)
  --name NAME            a name shown by list (default: role and datasets)
  --json                 list as JSON

${TARGET_HELP}

examples:
  tlearn keys create --role predict --dataset pets --dataset cats
  tlearn keys list
  tlearn keys revoke 4k9x2m1a7b

exit codes: 0 ok, 1 refused (not an admin key, unknown id), 2 usage, 4 the stack could not be reached`;

function parse<S extends z.ZodTypeAny>(schema: S, body: unknown, what: string): z.output<S> {
  const r = schema.safeParse(body);
  if (!r.success) {
    throw new ApiError(
      'UnexpectedResponse',
      `${what} answered in an unexpected shape; is the CLI as new as the stack?`,
      502,
    );
  }
  return r.data;
}

/** `tlearn keys` with an explicit context (tests). */
export async function runKeys(argv: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...TARGET_OPTIONS,
    role: { type: 'string' },
    dataset: { type: 'string', multiple: true },
    name: { type: 'string' },
    json: { type: 'boolean' },
  });
  const [sub, ...rest] = positionals;
  if (sub !== 'create' && sub !== 'list' && sub !== 'revoke') {
    throw new UsageError(
      `expected create, list or revoke (got ${sub === undefined ? 'nothing' : `'${sub}'`})`,
    );
  }
  const datasets = (values.dataset ?? []).map((d) => datasetArg(d));
  let input: { role: 'admin' | 'predict'; datasets: string[]; name?: string } | undefined;
  if (sub === 'create') {
    if (values.role !== 'predict' && values.role !== 'admin')
      throw new UsageError('--role must be predict or admin');
    if (values.role === 'predict' && datasets.length === 0) {
      throw new UsageError('a predict key needs at least one --dataset');
    }
    if (values.role === 'admin' && datasets.length > 0) {
      throw new UsageError('an admin key covers every dataset; drop --dataset');
    }
    input = { role: values.role, datasets, ...(values.name ? { name: values.name } : {}) };
  }
  if (sub === 'revoke' && rest[0] === undefined)
    throw new UsageError('missing the id of the key to revoke (tlearn keys list)');
  const target = resolveTarget(targetFlags(values), ctx.env, ctx.cwd);
  const api = apiClientFor(target, timeoutMsFlag(values), ctx);
  try {
    if (sub === 'create') {
      const body = await api.call('POST /keys', { body: input });
      const key = parse(CreatedApiKeySchema, body, 'POST /keys');
      ctx.err(
        `created ${key.role} key ${key.id} (${key.name})${key.datasets.length ? ` for ${key.datasets.join(', ')}` : ''}; its value follows, shown once:`,
      );
      ctx.out(key.value);
      return EXIT.OK;
    }
    if (sub === 'list') {
      const body = await api.call('GET /keys', {});
      const { keys } = parse(ApiKeyListSchema, body, 'GET /keys');
      if (values.json) {
        ctx.out(JSON.stringify(keys, null, 2));
        return EXIT.OK;
      }
      const rows = keys.map((k) => [
        k.id,
        k.name,
        k.role,
        k.role === 'admin' ? '(all)' : k.datasets.join(', '),
        k.enabled ? 'yes' : 'no',
        k.createdAt ?? '-',
      ]);
      for (const line of formatTable(['id', 'name', 'role', 'datasets', 'enabled', 'created'], rows))
        ctx.out(line);
      return EXIT.OK;
    }
    const id = rest[0] ?? '';
    await api.call('DELETE /keys/{id}', { params: { id } });
    ctx.out(`revoked key ${id}`);
    return EXIT.OK;
  } catch (err) {
    return reportRemoteError('keys', target, 'api', err, ctx);
  }
}

export const command: Command = {
  summary: 'create, list or revoke scoped API keys',
  help: HELP,
  run: (argv) => runKeys(argv, processContext()),
};
