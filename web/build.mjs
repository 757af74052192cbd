// Bundles src/main.js and its npm packages into build/app.js (the page loads nothing else).
// Usage: npm run build            (or: node build.mjs --watch)
import * as esbuild from 'esbuild';

const options = {
  entryPoints: ['src/main.js'],
  bundle: true,
  format: 'esm',
  target: ['es2020'],
  minify: true,
  sourcemap: true,
  outfile: 'build/app.js',
  legalComments: 'linked',
  logLevel: 'info',
  // TF.js mentions Node modules behind runtime checks; the browser build never reaches them.
  external: [],
  platform: 'browser',
  define: { 'process.env.NODE_ENV': '"production"' },
};

if (process.argv.includes('--watch')) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
