/** The `<mount>:<path>` argument of the CLI's verbs. */
import { InvalidRequestError } from '../errors';

/** Splits `<mount>:<path>`; the path part is validated by the client. */
export function parseTarget(arg: string): { mount: string; path: string } {
  const i = arg.indexOf(':');
  if (i <= 0) throw new InvalidRequestError(`expected <mount>:<path>, got ${JSON.stringify(arg)}`);
  return { mount: arg.slice(0, i), path: arg.slice(i + 1) };
}
