/** The agent's own error class: a deploy step that cannot go on (message + hint, as every ClonerError). */
import { ClonerError } from '../core/errors.ts';

export class DeployError extends ClonerError {
  override readonly code = 'DEPLOY_FAILED';
}
