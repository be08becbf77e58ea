import { escapeHtml } from "./http.js";

export const DASHBOARD_PATH = "/_portico/dashboard";
export const LOGIN_PATH = `${DASHBOARD_PATH}/login`;
export const LOGOUT_PATH = `${DASHBOARD_PATH}/logout`;
export const ASSETS_PATH = `${DASHBOARD_PATH}/assets`;

/**
 * Renders the login form. The access key id is echoed back after a failed
 * attempt, escaped; the secret key never is.
 */
export function renderLoginPage(options: { error?: string; accessKeyId?: string }): string {
  const error =
    options.error === undefined ? "" : `<p class="login-error" role="alert">${escapeHtml(options.error)}</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Portico</title>
<link rel="stylesheet" href="${ASSETS_PATH}/dashboard.css">
</head>
<body class="login-body">
<main class="login-card">
<h1>Portico</h1>
<p class="muted">Sign in with an access key of this Portico endpoint.</p>
${error}
<form method="post" action="${LOGIN_PATH}" autocomplete="off">
<label for="accessKeyId">Access key ID</label>
<input id="accessKeyId" name="accessKeyId" required spellcheck="false" value="${escapeHtml(options.accessKeyId ?? "")}">
<label for="secretAccessKey">Secret access key</label>
<input id="secretAccessKey" name="secretAccessKey" type="password" required>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
`;
}
