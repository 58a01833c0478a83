// Workflow bundle entry: every workflow type the worker registers.
export { mutationWorkflow } from './mutation-workflow';
