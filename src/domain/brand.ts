// The merchant's own look: an accent colour and a logo. Pure rules: what a valid accent and logo
// are, and which colours go with an accent so that text on it (and the accent as text on white)
// keeps WCAG 2.2 contrast (4.5:1 for normal text, SC 1.4.3), whatever the merchant picks.
import { imageSize } from 'image-size';

/** paymail's own accent, used when the merchant chose none (the checkout's and mails' default). */
export const DEFAULT_ACCENT = '#1f5eff';
/** The two text colours text on an accent may take: the one with the higher contrast wins. */
export const LIGHT_TEXT = '#ffffff';
export const DARK_TEXT = '#111827';
/** WCAG 2.2 minimum contrast for normal-size text (SC 1.4.3). */
export const MIN_TEXT_CONTRAST = 4.5;

/** A logo: PNG or JPEG only (no SVG: it can carry scripts), small, of sensible dimensions. */
export const LOGO_TYPES = { png: 'image/png', jpg: 'image/jpeg' } as const;
export type LogoType = (typeof LOGO_TYPES)[keyof typeof LOGO_TYPES];
export const LOGO_MAX_BYTES = 256 * 1024;
export const LOGO_MAX_SIDE = 2000;
export const LOGO_MIN_SIDE = 16;
/** A logo's path on paymail's site, /brand/<merchant>/logo-<sha256>.png|jpg (groups: merchant, hash, extension). */
export const LOGO_PATH = /^\/brand\/([^/?#]+)\/logo-([0-9a-f]{64})\.(png|jpg)$/;

/** "#1F5EFF", "1f5eff", "#1f5" → "#1f5eff"; anything else → null. */
export function parseAccent(input: string): string | null {
  const m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(input.trim());
  if (!m) return null;
  const hex = m[1]!.length === 3 ? [...m[1]!].map((c) => c + c).join('') : m[1]!;
  return `#${hex.toLowerCase()}`;
}

function channels(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** WCAG relative luminance of an sRGB colour (#rrggbb). */
export function relativeLuminance(hex: string): number {
  const [r, g, b] = channels(hex).map((c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG contrast ratio of two colours, from 1 to 21. */
export function contrastRatio(a: string, b: string): number {
  const [hi, lo] = [relativeLuminance(a), relativeLuminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** `share` of `other` mixed into `hex` (sRGB, per channel). */
function mix(hex: string, other: string, share: number): string {
  const a = channels(hex);
  const b = channels(other);
  return `#${a.map((c, i) => Math.round(c * (1 - share) + b[i]! * share).toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Mixes `hex` towards black until it reaches `min` contrast against `background`. Any colour gets
 * there (black on white is 21:1); a colour already dark enough is returned as it is.
 */
export function darkenForContrast(hex: string, background: string, min = MIN_TEXT_CONTRAST): string {
  for (let step = 0; step <= 50; step++) {
    const mixed = mix(hex, '#000000', step / 50);
    if (contrastRatio(mixed, background) >= min) return mixed;
  }
  return '#000000';
}

/** The colours the pages, mails and PDF use for an accent (or paymail's default). */
export interface BrandColours {
  /** Backgrounds: buttons, the top rule. */
  accent: string;
  /** Text on the accent: white or near-black, whichever contrasts more; pure black when only that reaches 4.5:1. */
  onAccent: string;
  /** The accent as text or a link on white: darkened when needed to keep 4.5:1. */
  accentText: string;
  /** Hover shade of the accent: darker under light text, lighter under dark text (contrast only grows). */
  accentHover: string;
}

export function brandColours(accent: string | null | undefined): BrandColours {
  const a = (accent && parseAccent(accent)) || DEFAULT_ACCENT;
  let onAccent = contrastRatio(a, LIGHT_TEXT) >= contrastRatio(a, DARK_TEXT) ? LIGHT_TEXT : DARK_TEXT;
  // Mid tones (#777777) reach 4.5:1 with neither: then pure black or white, one of which always does.
  if (contrastRatio(a, onAccent) < MIN_TEXT_CONTRAST) onAccent = contrastRatio(a, '#000000') >= contrastRatio(a, LIGHT_TEXT) ? '#000000' : LIGHT_TEXT;
  const accentHover = onAccent === LIGHT_TEXT ? mix(a, '#000000', 0.2) : mix(a, '#ffffff', 0.25);
  return { accent: a, onAccent, accentText: darkenForContrast(a, '#ffffff'), accentHover };
}

export type LogoCheck =
  | { ok: true; type: LogoType; extension: keyof typeof LOGO_TYPES; width: number; height: number }
  | { ok: false; code: 'BRAND_LOGO_TOO_LARGE' | 'BRAND_LOGO_TYPE' | 'BRAND_LOGO_DIMENSIONS'; message: string };

/**
 * Checks an uploaded logo by its bytes (never by its name or the browser's content type): PNG or
 * JPEG, at most LOGO_MAX_BYTES, each side between LOGO_MIN_SIDE and LOGO_MAX_SIDE pixels.
 */
export function checkLogo(bytes: Uint8Array): LogoCheck {
  if (bytes.length > LOGO_MAX_BYTES) return { ok: false, code: 'BRAND_LOGO_TOO_LARGE', message: `at most ${LOGO_MAX_BYTES / 1024} KB` };
  const png = bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const jpg = bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!png && !jpg) return { ok: false, code: 'BRAND_LOGO_TYPE', message: 'a PNG or JPEG image' };
  let size: { width?: number; height?: number; type?: string };
  try {
    size = imageSize(bytes);
  } catch {
    return { ok: false, code: 'BRAND_LOGO_TYPE', message: 'a PNG or JPEG image that can be read' };
  }
  const extension = png ? 'png' : 'jpg';
  if (size.type !== extension) return { ok: false, code: 'BRAND_LOGO_TYPE', message: 'a PNG or JPEG image that can be read' };
  const { width = 0, height = 0 } = size;
  if (Math.min(width, height) < LOGO_MIN_SIDE || Math.max(width, height) > LOGO_MAX_SIDE) {
    return { ok: false, code: 'BRAND_LOGO_DIMENSIONS', message: `between ${LOGO_MIN_SIDE} and ${LOGO_MAX_SIDE} pixels a side` };
  }
  return { ok: true, type: LOGO_TYPES[extension], extension, width, height };
}
