/// A self-contained interactive API page: it reads `/openapi.json`, lists every operation,
/// and sends requests from the browser. No CDN, so it works on a box with no internet.
enum DocsPage {
    static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>ThingData API</title>
        <style>
        body{font-family:system-ui,sans-serif;max-width:1000px;margin:20px auto;padding:0 16px;color:#222}
        details{border:1px solid #ddd;border-radius:6px;margin:6px 0;padding:6px 10px}
        summary{cursor:pointer}.m{display:inline-block;width:64px;font-weight:bold;font-family:monospace}
        .get{color:#1769aa}.post{color:#2e7d32}.put{color:#8d6e00}.patch{color:#6a1b9a}.delete{color:#c62828}
        textarea,input{width:100%;font-family:monospace;box-sizing:border-box}textarea{height:140px}
        pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:400px}
        </style></head><body>
        <h1>ThingData API</h1>
        <p>Generated from <a href="openapi.json">openapi.json</a>. Open an operation, fill in the path and body, and send it to this node.</p>
        <div id="ops">Loading…</div>
        <script>
        function el(t,a,c){const e=document.createElement(t);Object.assign(e,a||{});(c||[]).forEach(x=>e.append(x));return e}
        fetch('openapi.json').then(r=>r.json()).then(doc=>{
          const root=document.getElementById('ops');root.textContent='';
          for(const [path,ops] of Object.entries(doc.paths)){
            for(const [method,op] of Object.entries(ops)){
              const d=el('details');
              d.append(el('summary',{},[el('span',{className:'m '+method,textContent:method.toUpperCase()}),path+' — '+(op.summary||'')]));
              const p=el('input',{value:path});
              const params=(op.parameters||[]).filter(x=>x.in==='query').map(x=>x.name+(x.required?' (required)':'')).join(', ');
              if(params)d.append(el('p',{textContent:'Query parameters: '+params}));
              d.append(el('label',{textContent:'Path and query'}),p);
              let body=null;
              if(op.requestBody){body=el('textarea',{value:'{}'});d.append(el('label',{textContent:'Body (JSON)'}),body)}
              const out=el('pre');const b=el('button',{textContent:'Send'});
              b.onclick=async()=>{const h={};if(body)h['Content-Type']=Object.keys(op.requestBody.content)[0];if(method==='delete')h['X-Confirm-Delete']='true';
                const r=await fetch(p.value,{method:method.toUpperCase(),headers:h,body:body?body.value:undefined});
                const t=await r.text();let s=t;try{s=JSON.stringify(JSON.parse(t),null,2)}catch(e){}
                out.textContent=r.status+' '+r.statusText+'\\n\\n'+s};
              d.append(b,out);root.append(d);
            }
          }
        });
        </script></body></html>
        """
}
