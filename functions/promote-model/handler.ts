// Placeholder entry so the CDK app can bundle it; replaced by the real middy handler.
export const handler = async (): Promise<never> => {
  throw new Error('promote-model handler not built yet');
};
