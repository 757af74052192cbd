// Names of the .mid files the page downloads, built like the CLI's output names
// (hmvae_tf/serving/commands.py): `hmvae sample` writes <model>_sample_t<T>[_q<qpm>]_<i>-of-<n>.mid,
// `hmvae interpolate`
// <model>_interp_<a>_<b>_t<T>[_w<k>][_i<k>][_noshift][_q<qpm>]_<i>-of-<n>.mid. The page
// has no seed; it numbers samples and interpolation runs instead, so no two downloads of a
// session share a name.

/** Python's '{:g}' for the numbers the page shows (0.5, 1, 97.5). */
const g = (x) => String(Number(x));

/** A file name's stem (without folders and extension), with only characters that are safe in
 * any file system ('my song.mid' -> 'my_song'). */
export function fileStem(name) {
  const base = String(name).split(/[\\/]/).pop().replace(/\.[^.]*$/, '');
  return base.replace(/[^A-Za-z0-9._+-]+/g, '_').replace(/^[_.]+|_+$/g, '') || 'file';
}

/** '_w2_i1' for a window and instrument other than the defaults, '' for them (as
 * music_adapter.input_tag). */
export function inputTag(window, instrument) {
  return (window ? `_w${window}` : '') + (instrument === null || instrument === undefined ? ''
    : `_i${instrument}`);
}

/** '_q90' for a tempo other than 120 qpm, '' for it (as music_adapter.qpm_tag). */
export const qpmTag = (qpm) => (qpm === 120 ? '' : `_q${g(qpm)}`);

/** '03-of-12': zero-padded to the total's width, so the files of one run list in order. */
function of(index, total) {
  const width = Math.max(2, String(total).length);
  return `${String(index + 1).padStart(width, '0')}-of-${String(total).padStart(width, '0')}`;
}

/** The page's `number`-th sample of a session: <model>_sample_t<T>[_q<qpm>]_<number>.mid. */
export function sampleFileName({ model, temperature, qpm, number }) {
  return `${fileStem(model)}_sample_t${g(temperature)}${qpmTag(qpm)}_`
    + `${String(number).padStart(2, '0')}.mid`;
}

/** Point `index` of `total` of interpolation run `run` between slots a and b ({stem, tag}):
 * <model>_interp_<a>_<b>_t<T><tags>[_q<qpm>]_run<run>_<i>-of-<n>.mid, the tags said once
 * when A's and B's are the same, else as _a<A's>_b<B's>, _noshift when a file in A or B (or
 * one of those a point sent there was interpolated from) was read without moving it into the
 * model's register (as `hmvae interpolate`); index null:
 * the whole run in one file, ..._run<run>_all.mid (as its <prefix>_all.mid). */
export function interpolationFileName({ model, a, b, temperature, qpm, run, index, total }) {
  const tags = a.tag === b.tag ? a.tag : `_a${a.tag}_b${b.tag}`;
  const noShift = a.noShift || b.noShift ? '_noshift' : '';
  return `${fileStem(model)}_interp_${a.stem}_${b.stem}_t${g(temperature)}${tags}${noShift}`
    + `${qpmTag(qpm)}_run${run}_${index === null ? 'all' : of(index, total)}.mid`;
}
