// Node 20 lacks Promise.withResolvers, which aws-local-stepfunctions 3 uses (Lambda runs Node 22).
import '../lib/util/polyfills.ts';
