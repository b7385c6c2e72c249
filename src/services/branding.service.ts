// The merchant's look, as settings change it and as pages, mails and the PDF receipt show it:
// its accent (its text colours: src/domain/brand.ts) and the logo's path. The logo's URL carries its
// SHA-256 and the theme's URL the accent itself, so both can be cached for ever.
import { checkLogo, LOGO_PATH, parseAccent, type BrandColours } from '../domain/brand.ts';
import { AppError, type FieldProblem } from '../domain/errors.ts';
import { type MerchantDoc } from '../db/merchants.repository.ts';
import { type Repositories } from '../db/repositories.ts';

export interface BrandView {
  /** The merchant's accent (#rrggbb); absent: paymail's colours, and no theme stylesheet. */
  accent?: string;
  /** The theme stylesheet setting the CSS variables of the accent (pages only). */
  themePath?: string;
  logo?: {
    /** Path on paymail's site (the mail renderer makes it absolute under PUBLIC_URL). */
    path: string;
    type: string;
    /** Shown at most 48 px high and 240 px wide, proportions kept. */
    width: number;
    height: number;
  };
}

const LOGO_BOX = { height: 48, width: 240 };

type Branded = Pick<MerchantDoc, '_id'> & { branding?: { accent?: string | null; logo?: { sha256?: string | null; type?: string | null; width?: number | null; height?: number | null } | null } | null };

export const logoPath = (merchantId: string, sha256: string, type: string): string =>
  `/brand/${encodeURIComponent(merchantId)}/logo-${sha256}.${type === 'image/png' ? 'png' : 'jpg'}`;
export const themePath = (accent: string): string => `/brand/theme/${accent.slice(1)}.css`;

export function brandView(merchant: Branded): BrandView {
  const accent = merchant.branding?.accent ? parseAccent(merchant.branding.accent) : null;
  // Only names the accent: its text colours are worked out where they are used (the theme
  // stylesheet's route, the mail renderer), not on every checkout page.
  const view: BrandView = accent ? { accent, themePath: themePath(accent) } : {};
  const logo = merchant.branding?.logo;
  if (logo?.sha256 && logo.type && logo.width && logo.height) {
    const scale = Math.min(1, LOGO_BOX.height / logo.height, LOGO_BOX.width / logo.width);
    const path = logoPath(merchant._id, logo.sha256, logo.type);
    view.logo = { path, type: logo.type, width: Math.max(1, Math.round(logo.width * scale)), height: Math.max(1, Math.round(logo.height * scale)) };
  }
  return view;
}

/** The look a mail to the merchant's customers carries (src/mail/contracts.ts BrandData); undefined: paymail's. */
export function mailBrand(merchant: Branded): { accent?: string; logoPath?: string; logoWidth?: number; logoHeight?: number } | undefined {
  const view = brandView(merchant);
  if (!view.accent && !view.logo) return undefined;
  return {
    ...(view.accent ? { accent: view.accent } : {}),
    ...(view.logo ? { logoPath: view.logo.path, logoWidth: view.logo.width, logoHeight: view.logo.height } : {}),
  };
}

/** `{ brand }` for a mail's data when the merchant has a look of its own (nothing added otherwise). */
export function withBrand(merchant: Branded): { brand?: NonNullable<ReturnType<typeof mailBrand>> } {
  const brand = mailBrand(merchant);
  return brand ? { brand } : {};
}

/** The stylesheet of an accent: only the CSS variables public/checkout.css reads. */
export function themeCss(colours: BrandColours): string {
  return `:root {\n  --accent: ${colours.accent};\n  --accent-dark: ${colours.accentHover};\n  --on-accent: ${colours.onAccent};\n  --accent-text: ${colours.accentText};\n}\n`;
}

export interface BrandingInput {
  /** '#rrggbb' (or '#rgb'); '' goes back to paymail's default. */
  accent: string;
  /** A new logo's bytes, when one was uploaded. */
  logo?: Buffer | undefined;
  removeLogo?: boolean;
}

export function createBrandingService(deps: { repos: Pick<Repositories, 'brand'> }) {
  const { brand } = deps.repos;

  /** Checks everything first (every problem reported), then stores: nothing changes on a problem. */
  async function update(merchant: Pick<MerchantDoc, '_id'>, input: BrandingInput): Promise<void> {
    const problems: FieldProblem[] = [];
    const accent = input.accent.trim() === '' ? null : parseAccent(input.accent);
    if (input.accent.trim() !== '' && !accent) problems.push({ field: 'accent', code: 'BRAND_ACCENT_INVALID', message: 'a colour such as #1f5eff' });
    const checked = input.logo && input.logo.length > 0 ? checkLogo(input.logo) : undefined;
    if (checked && !checked.ok) problems.push({ field: 'logo', code: checked.code, message: checked.message });
    if (problems.length > 0) throw new AppError('BRANDING_INVALID', problems.map((p) => `${p.field}: ${p.message}`).join('; '), { httpStatus: 422, details: { problems } });
    await brand.setAccent(merchant._id, accent);
    if (checked?.ok) await brand.putLogo(merchant._id, { type: checked.type, width: checked.width, height: checked.height, bytes: input.logo! });
    else if (input.removeLogo) await brand.removeLogo(merchant._id);
  }

  /** A logo's bytes by its path (logoPath above), for the PDF receipt; null for any other path. */
  async function logoByPath(path: string): Promise<Buffer | null> {
    const m = LOGO_PATH.exec(path);
    if (!m) return null;
    const logo = await brand.logo(decodeURIComponent(m[1]!), m[2]!);
    return logo ? logo.bytes : null;
  }

  return { update, logo: brand.logo, logoByPath };
}
export type BrandingService = ReturnType<typeof createBrandingService>;
