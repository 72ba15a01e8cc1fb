// Node 20 lacks Promise.withResolvers, which aws-local-stepfunctions 3 uses (Lambda runs Node 22).
import '../lib/util/polyfills.ts';

// This machine runs Node 20 (Lambda runs 22); the SDK's once-per-process notice is noise in tests.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
