const app = document.querySelector<HTMLElement>("#app");
if (app) {
  app.innerHTML = "<h1>DAN</h1><p>The desktop app is being built.</p>";
}
