document.addEventListener("DOMContentLoaded", () => {
  const p = document.createElement("p");
  p.textContent = "Loaded at " + new Date().toISOString();
  document.body.appendChild(p);
});
