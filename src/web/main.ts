document.getElementById("app")!.textContent = "wirechat";
